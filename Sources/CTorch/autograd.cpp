// Conversions, in-place updates, autograd and the optimizer kernels.
#include <ATen/core/grad_mode.h>

#include "internal.h"

using namespace ctorch;

extern "C" {

// MARK: - Conversion and in-place updates

ct_error *ct_to(ct_tensor t, int32_t dtype, int32_t device_type, int32_t device_index, bool copy, ct_tensor *out) {
  return guard([&] {
    const at::Tensor &x = unwrap(t);
    auto type = dtype < 0 ? x.scalar_type() : static_cast<at::ScalarType>(dtype);
    auto dev = device_type < 0 ? x.device() : device(device_type, device_index);
    *out = wrap(x.to(dev, type, /*non_blocking=*/false, copy));
  });
}
ct_error *ct_to_channels_last(ct_tensor t, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).contiguous(at::MemoryFormat::ChannelsLast)); });
}
ct_error *ct_copy_(ct_tensor dst, ct_tensor src) {
  return guard([&] { at::NoGradGuard no_grad; dst->tensor.copy_(unwrap(src)); });
}
// Points the handle at `source` (detached), keeping requires_grad: every Swift object holding this handle sees
// the new data, device and dtype. Not `set_data`, which libtorch refuses between the CPU and a PrivateUse1 device
// (its shallow-copy check knows only the built-in dense backends): one path for every device keeps the
// virtual GPU's tests honest for CUDA. Used to move models for offloading.
ct_error *ct_replace_data_(ct_tensor t, ct_tensor source) {
  return guard([&] {
    const bool grad = t->tensor.requires_grad();
    at::Tensor replacement = unwrap(source).detach();
    if (grad) replacement.set_requires_grad(true);
    t->tensor = std::move(replacement);
  });
}
ct_error *ct_zero_(ct_tensor t) {
  return guard([&] { at::NoGradGuard no_grad; t->tensor.zero_(); });
}
ct_error *ct_fill_(ct_tensor t, double value) {
  return guard([&] { at::NoGradGuard no_grad; t->tensor.fill_(value); });
}
ct_error *ct_mul_scalar_(ct_tensor t, double s) {
  return guard([&] { at::NoGradGuard no_grad; t->tensor.mul_(s); });
}
ct_error *ct_add_(ct_tensor t, ct_tensor other, double alpha) {
  return guard([&] { at::NoGradGuard no_grad; t->tensor.add_(unwrap(other), alpha); });
}

// MARK: - Autograd

ct_error *ct_set_requires_grad(ct_tensor t, bool requires_grad) {
  return guard([&] { t->tensor.set_requires_grad(requires_grad); });
}
bool ct_requires_grad(ct_tensor t) { return t->tensor.requires_grad(); }
bool ct_is_leaf(ct_tensor t) { return t->tensor.is_leaf(); }
ct_error *ct_backward(ct_tensor t, ct_tensor grad, bool retain_graph) {
  return guard([&] {
    c10::optional<at::Tensor> g = optional(grad);
    t->tensor.backward(g.has_value() ? *g : at::Tensor(), retain_graph);
  });
}
ct_error *ct_grad(ct_tensor t, ct_tensor *out) {
  return guard([&] {
    const at::Tensor &g = t->tensor.grad();
    *out = g.defined() ? wrap(g) : nullptr;
  });
}
ct_error *ct_zero_grad(ct_tensor t) {
  return guard([&] { t->tensor.mutable_grad().reset(); });
}
ct_error *ct_detach(ct_tensor t, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).detach()); });
}

// MARK: - Optimizer kernels

// The parameters' defined gradients, grouped by (device, dtype) in first-seen order: _foreach kernels
// take one device and dtype per call.
static std::vector<std::vector<at::Tensor>> grads_by_device_and_dtype(const ct_tensor *params, int64_t n) {
  std::vector<std::vector<at::Tensor>> groups;
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor &g = params[i]->tensor.grad();
    if (!g.defined()) continue;
    std::vector<at::Tensor> *match = nullptr;
    for (auto &group : groups) {
      if (group.front().device() == g.device() && group.front().scalar_type() == g.scalar_type()) match = &group;
    }
    if (match) {
      match->push_back(g);
    } else {
      groups.push_back({g});
    }
  }
  return groups;
}

ct_error *ct_fused_adamw_(const ct_tensor *params, const ct_tensor *grads, const ct_tensor *exp_avgs,
                          const ct_tensor *exp_avg_sqs, const ct_tensor *steps, int64_t n, double lr,
                          double beta1, double beta2, double weight_decay, double eps) {
  return guard([&] {
    at::NoGradGuard no_grad;
    auto step_list = unwrap_list(steps, n);
    // The kernel only reads the step counts (for bias correction); torch.optim increments them
    // first, so step 1 is the first update.
    at::_foreach_add_(step_list, 1);
    at::_fused_adamw_(unwrap_list(params, n), unwrap_list(grads, n), unwrap_list(exp_avgs, n),
                      unwrap_list(exp_avg_sqs, n), /*max_exp_avg_sqs=*/{}, step_list, lr, beta1, beta2,
                      weight_decay, eps, /*amsgrad=*/false, /*maximize=*/false);
  });
}

// Same arithmetic as torch.nn.utils.clip_grad_norm_ (foreach path): per-tensor norms for each
// (device, dtype) group, the norm of those on the first gradient's device, then one multiply by
// min(max_norm / (total + 1e-6), 1).
ct_error *ct_clip_grad_norm_(const ct_tensor *params, int64_t n, double max_norm, double norm_type,
                             ct_tensor *total_norm) {
  return guard([&] {
    at::NoGradGuard no_grad;
    auto groups = grads_by_device_and_dtype(params, n);
    if (groups.empty()) {
      *total_norm = wrap(at::zeros({}, at::kFloat));
      return;
    }
    // The total norm lives on the first gradient's device (groups keep first-seen order), as in torch.
    at::Device first_device = groups.front().front().device();
    std::vector<at::Tensor> norms;
    for (const auto &group : groups) {
      for (const auto &norm : at::_foreach_norm(group, norm_type)) norms.push_back(norm.to(first_device));
    }
    auto total = at::linalg_vector_norm(at::stack(norms), norm_type);
    // Python's `max_norm / t` is `t.reciprocal() * max_norm`, which rounds differently from a division.
    auto coef = at::clamp(at::reciprocal(total + 1e-6) * max_norm, c10::nullopt, 1.0);
    for (auto &group : groups) at::_foreach_mul_(group, coef.to(group.front().device()));
    *total_norm = wrap(total);
  });
}

// torch.amp.GradScaler.unscale_: gradients grouped by (device, dtype) for the foreach kernel, each
// multiplied in place by `inv_scale`; `found_inf` says whether any element was inf or NaN.
ct_error *ct_amp_unscale_(const ct_tensor *params, int64_t n, double inv_scale, bool *found_inf) {
  return guard([&] {
    at::NoGradGuard no_grad;
    bool any = false;
    for (auto &group : grads_by_device_and_dtype(params, n)) {
      auto options = at::TensorOptions().dtype(at::kFloat).device(group.front().device());
      auto found = at::zeros({1}, options);
      at::_amp_foreach_non_finite_check_and_unscale_(group, found, at::full({1}, inv_scale, options));
      any = any || found.item<float>() != 0;
    }
    *found_inf = any;
  });
}

// torch.amp.GradScaler.update: the scale kernel itself on one-element CPU tensors (float32 scale,
// int32 growth tracker), so rounding and the growth rule are PyTorch's.
ct_error *ct_amp_update_scale(double *scale, int32_t *growth_tracker, bool found_inf, double growth_factor,
                              double backoff_factor, int64_t growth_interval) {
  return guard([&] {
    auto current = at::full({1}, *scale, at::kFloat);
    auto tracker = at::full({1}, *growth_tracker, at::kInt);
    auto found = at::full({1}, found_inf ? 1.0 : 0.0, at::kFloat);
    at::_amp_update_scale_(current, tracker, found, growth_factor, backoff_factor, growth_interval);
    *scale = current.item<float>();
    *growth_tracker = tracker.item<int32_t>();
  });
}

}  // extern "C"
