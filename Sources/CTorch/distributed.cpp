// Data-parallel collectives over libtorch's c10d, as torch.distributed sets them up: a TCPStore
// rendezvous (rank 0 hosts it unless a launcher such as torchrun already does), a ProcessGroupGloo (CPU ranks)
// or ProcessGroupNCCL (one CUDA GPU per rank; distributed_nccl.cpp) over it, and all-reduce / broadcast /
// barrier that wait at most the group's timeout. A rank that never arrives is named; a rank that dies
// surfaces as the backend's error (connection closed, or the timeout).
//
// Each backend reduces tensors where it lives: Gloo in host memory, NCCL on its rank's GPU. A tensor elsewhere
// (a CUDA bucket under Gloo, a host scalar under NCCL) is staged there and copied back; the trainer sends one
// flat bucket per step, so staging costs one copy each way.
// The wheel's libtorch_cpu is built with Gloo (c10d::ProcessGroupGloo is exported); its header is guarded by the
// build flag, which a consumer sets itself.
#define USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <sstream>
#include <stdexcept>

#include "distributed_backends.h"
#include "internal.h"

using namespace ctorch;

struct ct_process_group_s {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  int rank;
  int world_size;
  std::chrono::milliseconds timeout;
  at::Device device;  // where the backend reduces: the CPU (Gloo) or this rank's GPU (NCCL)
};

namespace {

std::string seconds(std::chrono::milliseconds t) {
  std::ostringstream s;
  s << static_cast<double>(t.count()) / 1000.0 << " s";
  return s.str();
}

std::string arrival_key(int rank) { return "arrived/" + std::to_string(rank); }

// Every rank announces itself, then waits for all the others; on timeout the error lists who is missing.
void await_all_ranks(c10d::Store &store, int rank, int world_size, std::chrono::milliseconds timeout) {
  store.set(arrival_key(rank), std::vector<uint8_t>{1});
  std::vector<std::string> keys;
  for (int r = 0; r < world_size; ++r) keys.push_back(arrival_key(r));
  try {
    store.wait(keys, timeout);
  } catch (const c10::Error &) {
    std::ostringstream missing;
    int count = 0;
    for (int r = 0; r < world_size; ++r) {
      if (!store.check({arrival_key(r)})) missing << (count++ ? ", " : "") << r;
    }
    throw std::runtime_error("rank " + std::to_string(rank) + ": rank(s) " + missing.str() + " of " +
                             std::to_string(world_size) + " never arrived at the rendezvous within " +
                             seconds(timeout));
  }
}

void wait(const c10::intrusive_ptr<c10d::Work> &work, const ct_process_group_s &group) {
  work->wait(group.timeout);
}

// `tensor` where the backend reduces (itself when it is there already), and after the collective, its values back.
at::Tensor staged(const at::Tensor &tensor, const ct_process_group_s &group) {
  return tensor.device() == group.device ? tensor : tensor.to(group.device);
}
void unstage(const at::Tensor &tensor, const at::Tensor &staged) {
  if (!staged.is_same(tensor)) tensor.copy_(staged);
}

}  // namespace

extern "C" {

bool ct_process_group_has_nccl(void) { return nccl_built(); }

ct_error *ct_process_group_new(const char *host, int32_t port, bool host_store, const char *prefix, int32_t rank,
                               int32_t world_size, int64_t timeout_ms, int32_t backend, int32_t cuda_device,
                               ct_process_group *out) {
  *out = nullptr;
  return guard([&] {
    TORCH_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "rank ", rank, " is not in a world of size ",
                world_size);
    TORCH_CHECK(port > 0 && port < 65536, "port ", port, " is not a TCP port");
    TORCH_CHECK(backend == 0 || backend == 1, "unknown process group backend ", backend);
    // NCCL's checks come before the rendezvous: a rank without its GPU must not leave the others waiting.
    if (backend == 1) check_nccl(rank, cuda_device);
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(port);
    options.isServer = host_store;
    options.numWorkers = world_size;
    options.waitWorkers = false;  // await_all_ranks waits instead, and names who is missing
    options.timeout = timeout;
    c10::intrusive_ptr<c10d::Store> tcp;
    try {
      tcp = c10::make_intrusive<c10d::TCPStore>(host, options);
    } catch (const std::exception &e) {
      throw std::runtime_error("rank " + std::to_string(rank) + ": could not " +
                               (host_store ? "host" : "reach") + " the rendezvous at " + host + ":" +
                               std::to_string(port) + " within " + seconds(timeout) + ": " + e.what());
    }
    auto store = c10::make_intrusive<c10d::PrefixStore>(prefix, tcp);
    await_all_ranks(*store, rank, world_size, timeout);
    if (backend == 1) {
      auto nccl = make_nccl_backend(store, rank, world_size, timeout, cuda_device);
      *out = new ct_process_group_s{store, nccl, rank, world_size, timeout,
                                    at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(cuda_device))};
    } else {
      auto gloo_options = c10d::ProcessGroupGloo::Options::create_default(timeout);
      auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, gloo_options);
      *out = new ct_process_group_s{store, gloo, rank, world_size, timeout, at::Device(at::kCPU)};
    }
  });
}

// As torch.distributed.destroy_process_group: NCCL's communicators and watchdog are shut down (bounded by the
// group's timeout) rather than left to the process's exit; Gloo has nothing to shut down.
void ct_process_group_free(ct_process_group group) {
  if (!group) return;
  try {
    group->backend->shutdown();
  } catch (const std::exception &) {
    // a peer that died already: its communicator is gone either way
  }
  delete group;
}

ct_error *ct_process_group_all_reduce(ct_process_group group, ct_tensor t, int32_t op) {
  return guard([&] {
    TORCH_CHECK(op == 0 || op == 1, "unknown reduce op ", op);
    const at::Tensor &tensor = unwrap(t);
    TORCH_CHECK(tensor.is_contiguous(), "all_reduce needs a contiguous tensor");
    at::Tensor work = staged(tensor, *group);
    std::vector<at::Tensor> tensors{work};
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;  // Gloo has no AVG; divided below, as DDP divides its buckets
    options.timeout = group->timeout;
    wait(group->backend->allreduce(tensors, options), *group);
    if (op == 1) work.div_(group->world_size);
    unstage(tensor, work);
  });
}

ct_error *ct_process_group_broadcast(ct_process_group group, ct_tensor t, int32_t root) {
  return guard([&] {
    TORCH_CHECK(root >= 0 && root < group->world_size, "root rank ", root, " is not in a world of size ",
                group->world_size);
    const at::Tensor &tensor = unwrap(t);
    TORCH_CHECK(tensor.is_contiguous(), "broadcast needs a contiguous tensor");
    at::Tensor work = staged(tensor, *group);
    std::vector<at::Tensor> tensors{work};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    options.timeout = group->timeout;
    wait(group->backend->broadcast(tensors, options), *group);
    unstage(tensor, work);
  });
}

ct_error *ct_process_group_barrier(ct_process_group group) {
  return guard([&] {
    c10d::BarrierOptions options;
    options.timeout = group->timeout;
    wait(group->backend->barrier(options), *group);
  });
}

}  // extern "C"
