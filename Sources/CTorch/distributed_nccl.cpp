// ProcessGroupNCCL, as torch.distributed.init_process_group("nccl", device_id=…) makes it: the class is
// libtorch_cuda's (exported); its header needs CUDA's runtime, crt and CCCL headers and NCCL's nccl.h, which
// the wheel leaves to pip's nvidia-* packages. Package.swift defines INKWELL_NCCL when it finds them beside the
// wheel's torch (scripts/bootstrap.sh installs the two that torch itself does not pull in).
#include "distributed_backends.h"

#include <stdexcept>
#include <string>

#ifdef INKWELL_NCCL
#define USE_C10D_NCCL
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace ctorch {

#ifdef INKWELL_NCCL

bool nccl_built() { return true; }

void check_nccl(int rank, int device) {
  int gpus = at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0;
  if (device < 0 || device >= gpus) {
    throw std::runtime_error("rank " + std::to_string(rank) + ": NCCL needs a CUDA GPU per rank, but cuda:" +
                             std::to_string(device) + " is not there (this machine has " + std::to_string(gpus) +
                             " usable CUDA GPU(s)); use the gloo backend on CPUs");
  }
}

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store> &store, int rank,
                                                    int world_size, std::chrono::milliseconds timeout, int device) {
  at::Device cuda(at::kCUDA, static_cast<c10::DeviceIndex>(device));
  // torch.cuda.set_device(LOCAL_RANK), as every DDP script does first: what NCCL and libtorch do on "the current
  // device" (contexts, streams, the barrier's tensor) then lands on this rank's GPU, not on every rank's cuda:0.
  c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(cuda);
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  auto backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, options);
  backend->setBoundDeviceId(cuda);
  backend->eagerConnectSingleDevice(cuda);
  return backend;
}

#else

bool nccl_built() { return false; }

void check_nccl(int rank, int) {
  throw std::runtime_error("rank " + std::to_string(rank) + ": this Inkwell was built without NCCL (no CUDA build of "
                           "libtorch, or CUDA's and NCCL's headers were missing: run scripts/bootstrap.sh, then "
                           "rebuild); use the gloo backend");
}

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store> &, int rank, int,
                                                    std::chrono::milliseconds, int device) {
  check_nccl(rank, device);
  return {};
}

#endif

}  // namespace ctorch
