// CTorch: a C ABI over ATen (libtorch's tensor library).
//
// Rules of this interface:
// - Tensors and generators are opaque handles owned by the caller; free each with its *_free.
// - Every fallible function returns NULL on success or a heap-allocated ct_error (free with
//   ct_error_free); results come back through out-parameters.
// - No C++ exception ever crosses this boundary.
// - dtype values are c10::ScalarType codes; device types: 0 = CPU, 1 = CUDA.
#ifndef CTORCH_H
#define CTORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_tensor_s *ct_tensor;
typedef struct ct_generator_s *ct_generator;

enum ct_error_code {
  CT_ERR_TORCH = 1,         // c10::Error (shape mismatch, bad argument, ...)
  CT_ERR_OUT_OF_MEMORY = 2, // c10::OutOfMemoryError
  CT_ERR_STD = 3,           // another std::exception
  CT_ERR_UNKNOWN = 4,       // anything else
};

typedef struct ct_error {
  int32_t code;
  char *message; // owned by the error
} ct_error;

void ct_error_free(ct_error *error);

// MARK: - Runtime

void ct_set_num_threads(int32_t n);
int32_t ct_get_num_threads(void);
// 1 when Inkwell started libgomp with OMP_WAIT_POLICY=PASSIVE (the user set neither OMP_WAIT_POLICY nor
// GOMP_SPINCOUNT), 0 when the user's environment decided (openmp_wait_policy.cpp).
int32_t ct_openmp_wait_policy_chosen(void);
bool ct_cuda_is_available(void);
int32_t ct_cuda_device_count(void);
ct_error *ct_cuda_synchronize(int32_t device);
ct_error *ct_cuda_peak_allocated_bytes(int32_t device, uint64_t *bytes);
ct_error *ct_cuda_reset_peak(int32_t device);
ct_error *ct_manual_seed(uint64_t seed);
// Grad mode is thread-local, as in PyTorch. Returns the previous mode.
bool ct_set_grad_enabled(bool enabled);
bool ct_is_grad_enabled(void);

// Host memory: a caching CPU allocator for blocks of 1 MiB and more (host_allocator.cpp), installed when
// the shim loads unless INKWELL_HOST_CACHE=0.
typedef struct ct_host_memory_stats {
  uint64_t live_bytes, cached_bytes, peak_live_bytes; // in cached-size blocks
  uint64_t hits, misses;
  uint64_t window_peak_live_bytes; // the peak of live_bytes since ct_host_cache_reset_window_peak
} ct_host_memory_stats;
bool ct_host_cache_is_installed(void);
void ct_host_cache_empty(void);
void ct_host_cache_reset_window_peak(void);
ct_host_memory_stats ct_host_cache_stats(void);

// MARK: - Tensor lifecycle and metadata

void ct_tensor_free(ct_tensor t);
// A new handle to the same tensor (shares storage and autograd identity).
ct_tensor ct_tensor_share(ct_tensor t);
int64_t ct_dim(ct_tensor t);
// Writes min(dim, capacity) sizes into `sizes`.
void ct_sizes(ct_tensor t, int64_t *sizes, int64_t capacity);
void ct_strides(ct_tensor t, int64_t *strides, int64_t capacity);
int64_t ct_numel(ct_tensor t);
int32_t ct_scalar_type(ct_tensor t);
void ct_device(ct_tensor t, int32_t *type, int32_t *index);
bool ct_is_contiguous(ct_tensor t);
bool ct_is_channels_last(ct_tensor t);
// A printable description (PyTorch's formatting); free with ct_string_free.
ct_error *ct_to_string(ct_tensor t, char **out);
void ct_string_free(char *s);

// MARK: - Creation

// Zero-copy view of `data`; `deleter(context)` runs when the last tensor using the data goes away.
ct_error *ct_from_blob(void *data, const int64_t *shape, int64_t ndim, int32_t dtype,
                       void (*deleter)(void *), void *context, ct_tensor *out);
// Copies `nbytes` from `data` into a new CPU tensor.
ct_error *ct_from_bytes(const void *data, size_t nbytes, const int64_t *shape, int64_t ndim,
                        int32_t dtype, ct_tensor *out);
// Copies a tensor's elements (any device, any layout) into `dst` as C-contiguous bytes.
ct_error *ct_copy_to_bytes(ct_tensor t, void *dst, size_t nbytes);
ct_error *ct_item_double(ct_tensor t, double *out);
ct_error *ct_item_int64(ct_tensor t, int64_t *out);

ct_error *ct_empty(const int64_t *shape, int64_t ndim, int32_t dtype, int32_t device_type,
                   int32_t device_index, ct_tensor *out);
ct_error *ct_full(const int64_t *shape, int64_t ndim, double value, int32_t dtype,
                  int32_t device_type, int32_t device_index, ct_tensor *out);
ct_error *ct_arange(double start, double end, double step, int32_t dtype, int32_t device_type,
                    int32_t device_index, ct_tensor *out);
ct_error *ct_linspace(double start, double end, int64_t steps, int32_t dtype, int32_t device_type,
                      int32_t device_index, ct_tensor *out);

// MARK: - Random numbers (generator may be NULL: the default generator of the device)

ct_error *ct_generator_new(int32_t device_type, int32_t device_index, uint64_t seed,
                           ct_generator *out);
void ct_generator_free(ct_generator g);
// A handle to the device's default generator (the one torch.manual_seed seeds and ops without an
// explicit generator, like dropout, draw from); freeing the handle leaves the generator alive.
ct_error *ct_default_generator(int32_t device_type, int32_t device_index, ct_generator *out);
ct_error *ct_generator_set_seed(ct_generator g, uint64_t seed);
// The generator's full state as a uint8 CPU tensor (torch.Generator.get_state()).
ct_error *ct_generator_get_state(ct_generator g, ct_tensor *out);
ct_error *ct_generator_set_state(ct_generator g, ct_tensor state);

ct_error *ct_randn(const int64_t *shape, int64_t ndim, int32_t dtype, int32_t device_type,
                   int32_t device_index, ct_generator g, ct_tensor *out);
ct_error *ct_rand(const int64_t *shape, int64_t ndim, int32_t dtype, int32_t device_type,
                  int32_t device_index, ct_generator g, ct_tensor *out);
ct_error *ct_randint(int64_t low, int64_t high, const int64_t *shape, int64_t ndim, int32_t dtype,
                     int32_t device_type, int32_t device_index, ct_generator g, ct_tensor *out);
ct_error *ct_randperm(int64_t n, int32_t dtype, int32_t device_type, int32_t device_index,
                      ct_generator g, ct_tensor *out);
ct_error *ct_multinomial(ct_tensor probs, int64_t samples, bool replacement, ct_generator g,
                         ct_tensor *out);
// In place: t ~ U(low, high) / N(mean, std). For parameter initialisation.
ct_error *ct_uniform_(ct_tensor t, double low, double high, ct_generator g);
ct_error *ct_normal_(ct_tensor t, double mean, double std, ct_generator g);

// MARK: - Elementwise

typedef enum ct_unary_op {
  CT_NEG, CT_EXP, CT_LOG, CT_SQRT, CT_RSQRT, CT_SIN, CT_COS, CT_ABS, CT_TANH, CT_SIGMOID,
  CT_RELU, CT_SILU, CT_GELU, CT_GELU_TANH, CT_ERF, CT_FLOOR, CT_CEIL, CT_ROUND, CT_SIGN,
  CT_RECIPROCAL, CT_SQUARE, CT_ISNAN, CT_ISFINITE, CT_LOGICAL_NOT, CT_LOG1P, CT_EXPM1,
} ct_unary_op;

typedef enum ct_binary_op {
  CT_ADD, CT_SUB, CT_MUL, CT_DIV, CT_POW, CT_MAXIMUM, CT_MINIMUM, CT_EQ, CT_NE, CT_LT, CT_LE,
  CT_GT, CT_GE, CT_LOGICAL_AND, CT_LOGICAL_OR, CT_REMAINDER, CT_FLOOR_DIVIDE, CT_ATAN2,
} ct_binary_op;

ct_error *ct_unary(ct_unary_op op, ct_tensor a, ct_tensor *out);
ct_error *ct_binary(ct_binary_op op, ct_tensor a, ct_tensor b, ct_tensor *out);
// a (op) s, or s (op) a when `scalar_first`. Type promotion follows PyTorch's for a Python number:
// with an integer or bool tensor a whole `s` acts as an int (int64 stays int64), otherwise as a float.
ct_error *ct_binary_scalar(ct_binary_op op, ct_tensor a, double s, bool scalar_first,
                           ct_tensor *out);
ct_error *ct_where(ct_tensor condition, ct_tensor a, ct_tensor b, ct_tensor *out);
ct_error *ct_clamp(ct_tensor a, bool has_min, double min, bool has_max, double max,
                   ct_tensor *out);
ct_error *ct_masked_fill(ct_tensor a, ct_tensor mask, double value, ct_tensor *out);
// a + weight * (b - a)
ct_error *ct_lerp(ct_tensor a, ct_tensor b, double weight, ct_tensor *out);

// MARK: - Linear algebra and neural-network functions

ct_error *ct_matmul(ct_tensor a, ct_tensor b, ct_tensor *out);
ct_error *ct_bmm(ct_tensor a, ct_tensor b, ct_tensor *out);
ct_error *ct_baddbmm(ct_tensor input, ct_tensor b1, ct_tensor b2, double beta, double alpha,
                     ct_tensor *out);
// torch.linalg.solve(a, b): x with a @ x = b (LAPACK's LU on the CPU).
ct_error *ct_linalg_solve(ct_tensor a, ct_tensor b, ct_tensor *out);
// torch.einsum(equation, tensors).
ct_error *ct_einsum(const char *equation, const ct_tensor *tensors, int64_t n, ct_tensor *out);
ct_error *ct_linear(ct_tensor x, ct_tensor weight, ct_tensor bias /* nullable */, ct_tensor *out);
ct_error *ct_conv2d(ct_tensor x, ct_tensor weight, ct_tensor bias /* nullable */,
                    const int64_t stride[2], const int64_t padding[2], const int64_t dilation[2],
                    int64_t groups, ct_tensor *out);
ct_error *ct_group_norm(ct_tensor x, int64_t groups, ct_tensor weight, ct_tensor bias, double eps,
                        ct_tensor *out);
ct_error *ct_layer_norm(ct_tensor x, const int64_t *normalized_shape, int64_t ndim,
                        ct_tensor weight, ct_tensor bias, double eps, ct_tensor *out);
ct_error *ct_softmax(ct_tensor x, int64_t dim, ct_tensor *out);
ct_error *ct_log_softmax(ct_tensor x, int64_t dim, ct_tensor *out);
// scale < 0 means the default 1/sqrt(head_dim).
ct_error *ct_scaled_dot_product_attention(ct_tensor q, ct_tensor k, ct_tensor v,
                                          ct_tensor mask /* nullable */, double dropout_p,
                                          bool is_causal, double scale, ct_tensor *out);

typedef enum ct_interpolate_mode {
  CT_INTERP_NEAREST, CT_INTERP_NEAREST_EXACT, CT_INTERP_BILINEAR, CT_INTERP_BICUBIC,
} ct_interpolate_mode;
// 4-D input; out_size (h, w). align_corners/antialias as in torch.nn.functional.interpolate.
ct_error *ct_interpolate(ct_tensor x, ct_interpolate_mode mode, const int64_t out_size[2],
                         bool align_corners, bool antialias, ct_tensor *out);

typedef enum ct_pad_mode { CT_PAD_CONSTANT, CT_PAD_REFLECT, CT_PAD_REPLICATE } ct_pad_mode;
// pads: (last-dim left, last-dim right, second-last left, ...), like torch.nn.functional.pad.
ct_error *ct_pad(ct_tensor x, const int64_t *pads, int64_t npads, ct_pad_mode mode, double value,
                 ct_tensor *out);
ct_error *ct_embedding(ct_tensor weight, ct_tensor indices, ct_tensor *out);
ct_error *ct_dropout(ct_tensor x, double p, bool train, ct_tensor *out);
// reduction: 0 none, 1 mean, 2 sum
ct_error *ct_mse_loss(ct_tensor a, ct_tensor b, int32_t reduction, ct_tensor *out);
ct_error *ct_cross_entropy(ct_tensor logits, ct_tensor target, int32_t reduction,
                           int64_t ignore_index, ct_tensor *out);

// MARK: - Shape and indexing

ct_error *ct_reshape(ct_tensor t, const int64_t *shape, int64_t ndim, ct_tensor *out);
ct_error *ct_view(ct_tensor t, const int64_t *shape, int64_t ndim, ct_tensor *out);
ct_error *ct_permute(ct_tensor t, const int64_t *dims, int64_t ndim, ct_tensor *out);
ct_error *ct_transpose(ct_tensor t, int64_t dim0, int64_t dim1, ct_tensor *out);
ct_error *ct_contiguous(ct_tensor t, ct_tensor *out);
ct_error *ct_flatten(ct_tensor t, int64_t start, int64_t end, ct_tensor *out);
ct_error *ct_unsqueeze(ct_tensor t, int64_t dim, ct_tensor *out);
ct_error *ct_squeeze(ct_tensor t, int64_t dim, ct_tensor *out);
ct_error *ct_squeeze_all(ct_tensor t, ct_tensor *out);
ct_error *ct_expand(ct_tensor t, const int64_t *shape, int64_t ndim, ct_tensor *out);
ct_error *ct_repeat(ct_tensor t, const int64_t *repeats, int64_t ndim, ct_tensor *out);
ct_error *ct_cat(const ct_tensor *tensors, int64_t n, int64_t dim, ct_tensor *out);
ct_error *ct_stack(const ct_tensor *tensors, int64_t n, int64_t dim, ct_tensor *out);
ct_error *ct_slice(ct_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step,
                   ct_tensor *out);
// torch.narrow: `length` elements from `start` (negative counts from the end); checked, not clamped.
ct_error *ct_narrow(ct_tensor t, int64_t dim, int64_t start, int64_t length, ct_tensor *out);
// torch.split_with_sizes: `n` views written to `outs` (all or none).
ct_error *ct_split_with_sizes(ct_tensor t, const int64_t *sizes, int64_t n, int64_t dim, ct_tensor *outs);
ct_error *ct_select(ct_tensor t, int64_t dim, int64_t index, ct_tensor *out);
ct_error *ct_index_select(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor *out);
ct_error *ct_gather(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor *out);
ct_error *ct_flip(ct_tensor t, const int64_t *dims, int64_t ndim, ct_tensor *out);
ct_error *ct_tril(ct_tensor t, int64_t diagonal, ct_tensor *out);
ct_error *ct_triu(ct_tensor t, int64_t diagonal, ct_tensor *out);

// MARK: - Reductions (ndim == 0 reduces over all dimensions)

ct_error *ct_sum(ct_tensor t, const int64_t *dims, int64_t ndim, bool keepdim, ct_tensor *out);
ct_error *ct_mean(ct_tensor t, const int64_t *dims, int64_t ndim, bool keepdim, ct_tensor *out);
ct_error *ct_var(ct_tensor t, const int64_t *dims, int64_t ndim, int64_t correction, bool keepdim,
                 ct_tensor *out);
ct_error *ct_norm(ct_tensor t, double p, const int64_t *dims, int64_t ndim, bool keepdim,
                  ct_tensor *out);
ct_error *ct_max_all(ct_tensor t, ct_tensor *out);
ct_error *ct_min_all(ct_tensor t, ct_tensor *out);
ct_error *ct_max_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values,
                     ct_tensor *indices);
ct_error *ct_min_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values,
                     ct_tensor *indices);
ct_error *ct_argmax(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *out);
ct_error *ct_cumsum(ct_tensor t, int64_t dim, ct_tensor *out);
ct_error *ct_cumprod(ct_tensor t, int64_t dim, ct_tensor *out);
ct_error *ct_topk(ct_tensor t, int64_t k, int64_t dim, bool largest, bool sorted,
                  ct_tensor *values, ct_tensor *indices);
ct_error *ct_sort(ct_tensor t, int64_t dim, bool descending, ct_tensor *values,
                  ct_tensor *indices);
ct_error *ct_all(ct_tensor t, bool *out);
ct_error *ct_equal(ct_tensor a, ct_tensor b, bool *out);

// MARK: - Conversion and in-place updates (optimizers and loaders only)

// device_type < 0 keeps the device; dtype < 0 keeps the dtype.
ct_error *ct_to(ct_tensor t, int32_t dtype, int32_t device_type, int32_t device_index,
                bool copy, ct_tensor *out);
ct_error *ct_to_channels_last(ct_tensor t, ct_tensor *out);
ct_error *ct_copy_(ct_tensor dst, ct_tensor src);
ct_error *ct_replace_data_(ct_tensor t, ct_tensor source); // this handle now holds source (may change device)
ct_error *ct_zero_(ct_tensor t);
ct_error *ct_fill_(ct_tensor t, double value);
ct_error *ct_mul_scalar_(ct_tensor t, double s);
// t += alpha * other
ct_error *ct_add_(ct_tensor t, ct_tensor other, double alpha);

// MARK: - Autograd

ct_error *ct_set_requires_grad(ct_tensor t, bool requires_grad);
bool ct_requires_grad(ct_tensor t);
bool ct_is_leaf(ct_tensor t);
ct_error *ct_backward(ct_tensor t, ct_tensor grad /* nullable */, bool retain_graph);
// *out is NULL when the tensor has no gradient.
ct_error *ct_grad(ct_tensor t, ct_tensor *out);
ct_error *ct_zero_grad(ct_tensor t); // drops the gradient (set_to_none)
ct_error *ct_detach(ct_tensor t, ct_tensor *out);

// MARK: - Optimizer kernels

// One AdamW step over n parameters with ATen's fused kernel (torch.optim.AdamW(fused=True)).
// `steps` are float32 scalar tensors on the parameters' device, incremented before the update.
// All tensors share one device and dtype; parameters without a gradient must not be passed.
ct_error *ct_fused_adamw_(const ct_tensor *params, const ct_tensor *grads, const ct_tensor *exp_avgs,
                          const ct_tensor *exp_avg_sqs, const ct_tensor *steps, int64_t n,
                          double lr, double beta1, double beta2, double weight_decay, double eps);
// torch.nn.utils.clip_grad_norm_: scales the gradients in place, returns the total norm (fp32).
ct_error *ct_clip_grad_norm_(const ct_tensor *params, int64_t n, double max_norm, double norm_type,
                             ct_tensor *total_norm);
// torch.amp.GradScaler: unscale the parameters' gradients in place and report inf/NaN; update the scale.
ct_error *ct_amp_unscale_(const ct_tensor *params, int64_t n, double inv_scale, bool *found_inf);
ct_error *ct_amp_update_scale(double *scale, int32_t *growth_tracker, bool found_inf, double growth_factor,
                              double backoff_factor, int64_t growth_interval);

// MARK: - Gradient checkpointing (checkpoint.cpp)

// A ct_error for the caller's own failures (a function passed to ct_checkpoint reports with it).
ct_error *ct_error_new(int32_t code, const char *message);
// The function a checkpoint runs: reads `n` borrowed input handles (not to be freed), writes one new tensor to
// *out, or returns an error.
typedef ct_error *(*ct_checkpoint_fn)(void *context, const ct_tensor *inputs, int64_t n, ct_tensor *out);
// torch.utils.checkpoint: runs fn(inputs) without keeping its activations; backward runs it again with grad
// enabled on detached inputs and back-propagates through it (parameters inside accumulate their gradients).
// `release(context)` runs exactly once, when the autograd graph (or, on failure, this call) lets go of it,
// possibly on another thread. An error from fn in backward is thrown by ct_backward with fn's code.
ct_error *ct_checkpoint(ct_checkpoint_fn fn, void *context, void (*release)(void *context),
                        const ct_tensor *inputs, int64_t n, ct_tensor *out);

// MARK: - Distributed (distributed.cpp)

// A c10d process group (TCPStore rendezvous + ProcessGroupGloo or ProcessGroupNCCL), one per rank.
typedef struct ct_process_group_s *ct_process_group;
// True when this shim was built with ProcessGroupNCCL.
bool ct_process_group_has_nccl(void);
// Joins a group of `world_size` ranks at host:port. `host_store`: this rank hosts the TCPStore (rank 0, unless a
// launcher such as torchrun hosts it); keys go under `prefix`. `backend` 0 = Gloo, 1 = NCCL on CUDA device
// `cuda_device` (checked before the rendezvous). Waits at most `timeout_ms` for every rank to arrive (the error
// names those that did not); every collective waits at most as long.
ct_error *ct_process_group_new(const char *host, int32_t port, bool host_store, const char *prefix, int32_t rank,
                               int32_t world_size, int64_t timeout_ms, int32_t backend, int32_t cuda_device,
                               ct_process_group *out);
void ct_process_group_free(ct_process_group group);
// In place, over all ranks; op 0 = sum, 1 = average. A tensor not where the backend reduces (a CUDA tensor under
// Gloo, a host tensor under NCCL) is staged there and copied back.
ct_error *ct_process_group_all_reduce(ct_process_group group, ct_tensor t, int32_t op);
// In place: every rank gets rank `root`'s values.
ct_error *ct_process_group_broadcast(ct_process_group group, ct_tensor t, int32_t root);
ct_error *ct_process_group_barrier(ct_process_group group);

#ifdef __cplusplus
}
#endif

#endif
