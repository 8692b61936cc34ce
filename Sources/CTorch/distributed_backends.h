// The c10d backends a process group can run on. Gloo's header needs stand-ins for headers the wheel leaves out
// (gloo_decls/), NCCL's needs CUDA's and NCCL's own headers; each is included by its own file only.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

namespace ctorch {

// True when this shim was built with ProcessGroupNCCL (Package.swift found CUDA's and NCCL's headers).
bool nccl_built();

// Throws, saying what to do, when NCCL was not built or CUDA device `device` is not there: called before the
// rendezvous, so a rank without its GPU does not leave the others waiting.
void check_nccl(int rank, int device);

// A ProcessGroupNCCL of `world_size` ranks over `store`, bound to CUDA device `device` and connected at once (a
// rank that cannot reach the others fails here, not at its first collective). Call check_nccl first.
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store> &store, int rank,
                                                    int world_size, std::chrono::milliseconds timeout, int device);

}  // namespace ctorch
