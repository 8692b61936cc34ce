// Runtime settings, tensor lifecycle, creation and random numbers.
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <sstream>

#include "internal.h"

using namespace ctorch;

namespace ctorch {
ct_error *make_error(int32_t code, const char *message) {
  auto *e = static_cast<ct_error *>(std::malloc(sizeof(ct_error)));
  if (e == nullptr) return nullptr;
  // The CPU allocator reports a failed allocation as a plain c10::Error (CAFFE_ENFORCE in
  // alloc_cpu.cpp), not c10::OutOfMemoryError: classify it by its message so that running out of
  // host memory is the same catchable case as running out of device memory.
  if (code == CT_ERR_TORCH && message != nullptr &&
      std::strstr(message, "DefaultCPUAllocator: can't allocate memory") != nullptr) {
    code = CT_ERR_OUT_OF_MEMORY;
  }
  e->code = code;
  e->message = strdup(message != nullptr ? message : "");
  return e;
}
}  // namespace ctorch

extern "C" {

void ct_error_free(ct_error *error) {
  if (error == nullptr) return;
  std::free(error->message);
  std::free(error);
}

// MARK: - Runtime

void ct_set_num_threads(int32_t n) {
  try { at::set_num_threads(n); } catch (...) {}
}
int32_t ct_get_num_threads(void) { return at::get_num_threads(); }
bool ct_cuda_is_available(void) {
  try { return at::hasCUDA() && at::detail::getCUDAHooks().getNumGPUs() > 0; } catch (...) { return false; }
}
int32_t ct_cuda_device_count(void) {
  try { return at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0; } catch (...) { return 0; }
}
ct_error *ct_cuda_synchronize(int32_t device) {
  return guard([&] { at::detail::getCUDAHooks().deviceSynchronize(static_cast<c10::DeviceIndex>(device)); });
}
// torch.cuda.max_memory_allocated and reset_peak_memory_stats, through c10's device-generic allocator API
// (no link to c10_cuda needed; without CUDA it is an error naming the missing allocator or device).
ct_error *ct_cuda_peak_allocated_bytes(int32_t device, uint64_t *bytes) {
  return guard([&] {
    auto stats = c10::getDeviceAllocator(c10::DeviceType::CUDA)->getDeviceStats(static_cast<c10::DeviceIndex>(device));
    *bytes = static_cast<uint64_t>(stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak);
  });
}
ct_error *ct_cuda_reset_peak(int32_t device) {
  return guard([&] { c10::getDeviceAllocator(c10::DeviceType::CUDA)->resetPeakStats(static_cast<c10::DeviceIndex>(device)); });
}
ct_error *ct_manual_seed(uint64_t seed) {
  return guard([&] { at::manual_seed(seed); });
}
bool ct_set_grad_enabled(bool enabled) {
  bool previous = at::GradMode::is_enabled();
  at::GradMode::set_enabled(enabled);
  return previous;
}
bool ct_is_grad_enabled(void) { return at::GradMode::is_enabled(); }

// MARK: - Tensor lifecycle and metadata

void ct_tensor_free(ct_tensor t) { delete t; }
ct_tensor ct_tensor_share(ct_tensor t) { return wrap(t->tensor); }
int64_t ct_dim(ct_tensor t) { return t->tensor.dim(); }
void ct_sizes(ct_tensor t, int64_t *sizes, int64_t capacity) {
  auto s = t->tensor.sizes();
  for (int64_t i = 0; i < capacity && i < static_cast<int64_t>(s.size()); ++i) sizes[i] = s[i];
}
void ct_strides(ct_tensor t, int64_t *strides, int64_t capacity) {
  auto s = t->tensor.strides();
  for (int64_t i = 0; i < capacity && i < static_cast<int64_t>(s.size()); ++i) strides[i] = s[i];
}
int64_t ct_numel(ct_tensor t) { return t->tensor.numel(); }
int32_t ct_scalar_type(ct_tensor t) { return static_cast<int32_t>(t->tensor.scalar_type()); }
void ct_device(ct_tensor t, int32_t *type, int32_t *index) {
  auto d = t->tensor.device();
  *type = d.is_cuda() ? 1 : d.is_privateuseone() ? 2 : 0;
  *index = d.has_index() ? d.index() : 0;
}
bool ct_is_contiguous(ct_tensor t) { return t->tensor.is_contiguous(); }
bool ct_is_channels_last(ct_tensor t) {
  return t->tensor.dim() == 4 && t->tensor.is_contiguous(at::MemoryFormat::ChannelsLast);
}
ct_error *ct_to_string(ct_tensor t, char **out) {
  return guard([&] {
    std::ostringstream s;
    s << t->tensor;
    *out = strdup(s.str().c_str());
  });
}
void ct_string_free(char *s) { std::free(s); }

// MARK: - Creation

ct_error *ct_from_blob(void *data, const int64_t *shape, int64_t ndim, int32_t dtype,
                       void (*deleter)(void *), void *context, ct_tensor *out) {
  return guard([&] {
    auto options = at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype));
    *out = wrap(at::from_blob(data, dims(shape, ndim), [deleter, context](void *) {
      if (deleter != nullptr) deleter(context);
    }, options));
  });
}
ct_error *ct_from_bytes(const void *data, size_t nbytes, const int64_t *shape, int64_t ndim,
                        int32_t dtype, ct_tensor *out) {
  return guard([&] {
    auto t = at::empty(dims(shape, ndim), at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype)));
    TORCH_CHECK(t.nbytes() == nbytes, "byte count ", nbytes, " does not match shape ", t.sizes(),
                " of ", t.scalar_type(), " (", t.nbytes(), " bytes)");
    if (nbytes > 0) std::memcpy(t.data_ptr(), data, nbytes);
    *out = wrap(std::move(t));
  });
}
ct_error *ct_copy_to_bytes(ct_tensor t, void *dst, size_t nbytes) {
  return guard([&] {
    auto c = t->tensor.detach().to(at::kCPU).contiguous();
    TORCH_CHECK(c.nbytes() == nbytes, "destination holds ", nbytes, " bytes, tensor has ", c.nbytes());
    if (nbytes > 0) std::memcpy(dst, c.data_ptr(), nbytes);
  });
}
ct_error *ct_item_double(ct_tensor t, double *out) {
  return guard([&] { *out = t->tensor.item<double>(); });
}
ct_error *ct_item_int64(ct_tensor t, int64_t *out) {
  return guard([&] { *out = t->tensor.item<int64_t>(); });
}
ct_error *ct_empty(const int64_t *shape, int64_t ndim, int32_t dtype, int32_t device_type,
                   int32_t device_index, ct_tensor *out) {
  return guard([&] { *out = wrap(at::empty(dims(shape, ndim), options(dtype, device_type, device_index))); });
}
ct_error *ct_full(const int64_t *shape, int64_t ndim, double value, int32_t dtype,
                  int32_t device_type, int32_t device_index, ct_tensor *out) {
  return guard([&] { *out = wrap(at::full(dims(shape, ndim), value, options(dtype, device_type, device_index))); });
}
ct_error *ct_arange(double start, double end, double step, int32_t dtype, int32_t device_type,
                    int32_t device_index, ct_tensor *out) {
  return guard([&] {
    // ATen computes an integer arange's length with the step cast to the integer type: a fractional
    // step below 1 would divide by zero there (SIGFPE, the process dies), so refuse it here.
    auto type = static_cast<at::ScalarType>(dtype);
    TORCH_CHECK(!at::isIntegralType(type, /*includeBool=*/true) || std::fabs(step) >= 1.0,
                "arange: step ", step, " is 0 in the integer dtype ", type, "; use a floating dtype");
    *out = wrap(at::arange(start, end, step, options(dtype, device_type, device_index)));
  });
}
ct_error *ct_linspace(double start, double end, int64_t steps, int32_t dtype, int32_t device_type,
                      int32_t device_index, ct_tensor *out) {
  return guard([&] { *out = wrap(at::linspace(start, end, steps, options(dtype, device_type, device_index))); });
}

// MARK: - Random numbers

ct_error *ct_generator_new(int32_t device_type, int32_t device_index, uint64_t seed, ct_generator *out) {
  return guard([&] {
    at::Generator g = device_type == 1 ? at::detail::getCUDAHooks().getNewGenerator(static_cast<c10::DeviceIndex>(device_index))
                      : device_type == 2 ? vgpu_generator(seed)
                                         : at::detail::createCPUGenerator(seed);
    g.set_current_seed(seed);
    *out = new ct_generator_s{std::move(g)};
  });
}
void ct_generator_free(ct_generator g) { delete g; }
ct_error *ct_default_generator(int32_t device_type, int32_t device_index, ct_generator *out) {
  return guard([&] {
    at::Generator g = at::globalContext().defaultGenerator(device(device_type, device_index));
    *out = new ct_generator_s{g};
  });
}
ct_error *ct_generator_set_seed(ct_generator g, uint64_t seed) {
  return guard([&] {
    std::lock_guard<std::mutex> lock(g->generator.mutex());
    g->generator.set_current_seed(seed);
  });
}
ct_error *ct_generator_get_state(ct_generator g, ct_tensor *out) {
  return guard([&] {
    std::lock_guard<std::mutex> lock(g->generator.mutex());
    *out = wrap(g->generator.get_state());
  });
}
ct_error *ct_generator_set_state(ct_generator g, ct_tensor state) {
  return guard([&] {
    std::lock_guard<std::mutex> lock(g->generator.mutex());
    g->generator.set_state(state->tensor);
  });
}
ct_error *ct_randn(const int64_t *shape, int64_t ndim, int32_t dtype, int32_t device_type,
                   int32_t device_index, ct_generator g, ct_tensor *out) {
  return guard([&] { *out = wrap(at::randn(dims(shape, ndim), optional(g), options(dtype, device_type, device_index))); });
}
ct_error *ct_rand(const int64_t *shape, int64_t ndim, int32_t dtype, int32_t device_type,
                  int32_t device_index, ct_generator g, ct_tensor *out) {
  return guard([&] { *out = wrap(at::rand(dims(shape, ndim), optional(g), options(dtype, device_type, device_index))); });
}
ct_error *ct_randint(int64_t low, int64_t high, const int64_t *shape, int64_t ndim, int32_t dtype,
                     int32_t device_type, int32_t device_index, ct_generator g, ct_tensor *out) {
  return guard([&] {
    *out = wrap(at::randint(low, high, dims(shape, ndim), optional(g), options(dtype, device_type, device_index)));
  });
}
ct_error *ct_randperm(int64_t n, int32_t dtype, int32_t device_type, int32_t device_index,
                      ct_generator g, ct_tensor *out) {
  return guard([&] { *out = wrap(at::randperm(n, optional(g), options(dtype, device_type, device_index))); });
}
ct_error *ct_multinomial(ct_tensor probs, int64_t samples, bool replacement, ct_generator g, ct_tensor *out) {
  return guard([&] { *out = wrap(at::multinomial(unwrap(probs), samples, replacement, optional(g))); });
}
ct_error *ct_uniform_(ct_tensor t, double low, double high, ct_generator g) {
  return guard([&] { at::NoGradGuard no_grad; t->tensor.uniform_(low, high, optional(g)); });
}
ct_error *ct_normal_(ct_tensor t, double mean, double std, ct_generator g) {
  return guard([&] { at::NoGradGuard no_grad; t->tensor.normal_(mean, std, optional(g)); });
}

}  // extern "C"
