// Shared plumbing of the shim: handle wrapping and the exception barrier.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstring>
#include <string>
#include <vector>

#include "ctorch.h"

struct ct_tensor_s {
  at::Tensor tensor;
};

struct ct_generator_s {
  at::Generator generator;
};

namespace ctorch {

inline ct_tensor wrap(at::Tensor t) { return new ct_tensor_s{std::move(t)}; }
inline const at::Tensor &unwrap(ct_tensor t) { return t->tensor; }
inline c10::optional<at::Tensor> optional(ct_tensor t) {
  if (t == nullptr) return c10::nullopt;
  return t->tensor;
}
inline c10::optional<at::Generator> optional(ct_generator g) {
  if (g == nullptr) return c10::nullopt;
  return g->generator;
}
inline std::vector<at::Tensor> unwrap_list(const ct_tensor *ts, int64_t n) {
  std::vector<at::Tensor> v;
  v.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v.push_back(ts[i]->tensor);
  return v;
}
inline at::IntArrayRef dims(const int64_t *values, int64_t n) {
  return at::IntArrayRef(values, static_cast<size_t>(n));
}
// The virtual GPU (vgpu.cpp): registered on first use; a CPU-generator-backed generator of its own.
void ensure_vgpu();
at::Generator vgpu_generator(uint64_t seed);

// Device codes shared with Swift's `Device`: 0 CPU, 1 CUDA, 2 the virtual GPU (PrivateUse1).
inline at::Device device(int32_t type, int32_t index) {
  if (type == 1) return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  if (type == 2) {
    ensure_vgpu();
    return at::Device(at::kPrivateUse1, 0);
  }
  return at::Device(at::kCPU);
}
inline at::TensorOptions options(int32_t dtype, int32_t device_type, int32_t device_index) {
  return at::TensorOptions()
      .dtype(static_cast<at::ScalarType>(dtype))
      .device(device(device_type, device_index));
}

ct_error *make_error(int32_t code, const char *message);

// Runs `body`, turning every C++ exception into a ct_error. OOM is caught first: it is a
// c10::Error subclass but callers handle it differently (smaller batch, hint to the user).
template <class F>
ct_error *guard(F &&body) {
  try {
    body();
    return nullptr;
  } catch (const c10::OutOfMemoryError &e) {
    return make_error(CT_ERR_OUT_OF_MEMORY, e.what_without_backtrace());
  } catch (const c10::Error &e) {
    return make_error(CT_ERR_TORCH, e.what_without_backtrace());
  } catch (const std::exception &e) {
    return make_error(CT_ERR_STD, e.what());
  } catch (...) {
    return make_error(CT_ERR_UNKNOWN, "unknown C++ exception");
  }
}

}  // namespace ctorch
