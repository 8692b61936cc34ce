// Gradient checkpointing (torch.utils.checkpoint) for the Swift side, which libtorch's C++ API lacks: a custom
// autograd Function whose forward runs a caller's function without recording a graph, and whose backward runs
// it again with grad enabled on detached inputs and back-propagates through that recomputation (the reentrant
// form of torch.utils.checkpoint). Parameters used inside get their gradients accumulated by that inner
// backward; the inputs' gradients are returned to the outer graph.
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <stdexcept>

#include "internal.h"

using namespace ctorch;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

// Rethrows a ct_error from the caller's function as the C++ exception the shim's guard maps back to the same
// code, so an out-of-memory in a recomputation stays an out-of-memory in Swift.
[[noreturn]] void rethrow(ct_error *error, const char *context) {
  std::string message = std::string(context) + (error->message ? error->message : "");
  int32_t code = error->code;
  ct_error_free(error);
  if (code == CT_ERR_OUT_OF_MEMORY) TORCH_CHECK_WITH(OutOfMemoryError, false, message);
  if (code == CT_ERR_TORCH) TORCH_CHECK(false, message);
  throw std::runtime_error(message);
}

// The caller's function and its context; `release` runs once, when the last holder (the autograd node, or
// ct_checkpoint itself) lets go, which may be on an autograd worker thread.
struct Body : torch::CustomClassHolder {
  ct_checkpoint_fn fn;
  void *context;
  void (*release)(void *);
  Body(ct_checkpoint_fn fn, void *context, void (*release)(void *)) : fn(fn), context(context), release(release) {}
  ~Body() override {
    if (release) release(context);
  }

  at::Tensor call(const std::vector<at::Tensor> &inputs, const char *error_context) {
    std::vector<ct_tensor> handles;
    handles.reserve(inputs.size());
    for (const auto &x : inputs) handles.push_back(wrap(x));
    ct_tensor out = nullptr;
    ct_error *error = fn(context, handles.data(), static_cast<int64_t>(handles.size()), &out);
    for (auto h : handles) ct_tensor_free(h);
    if (error) {
      if (out) ct_tensor_free(out);
      rethrow(error, error_context);
    }
    TORCH_CHECK(out != nullptr, error_context, "the checkpointed function returned no tensor");
    at::Tensor y = out->tensor;
    ct_tensor_free(out);
    return y;
  }
};

struct Checkpoint : torch::autograd::Function<Checkpoint> {
  // `anchor` requires grad so that the output does even when no input does: the parameters used inside
  // (LoRA weights) are invisible to this node, and torch's reentrant checkpoint silently drops their
  // gradients in that case (hence diffusers' use_reentrant=False).
  static at::Tensor forward(AutogradContext *ctx, c10::intrusive_ptr<Body> body, at::TensorList inputs,
                            const at::Tensor & /*anchor*/) {
    ctx->saved_data["body"] = c10::IValue::make_capsule(body);
    ctx->save_for_backward(inputs.vec());
    return body->call(inputs.vec(), "");
  }

  static variable_list backward(AutogradContext *ctx, variable_list grad_outputs) {
    auto body = c10::static_intrusive_pointer_cast<Body>(ctx->saved_data["body"].toCapsule());
    auto saved = ctx->get_saved_variables();
    std::vector<at::Tensor> inputs;
    inputs.reserve(saved.size());
    for (const auto &x : saved) {
      auto d = x.detach();
      d.requires_grad_(x.requires_grad());
      inputs.push_back(std::move(d));
    }
    {
      // The engine runs backward with grad mode off (and maybe on a device's worker thread, where grad mode,
      // being thread-local, starts off anyway).
      at::AutoGradMode enable_grad(true);
      at::Tensor y = body->call(inputs, "in the recomputation of a checkpointed block during backward: ");
      if (y.requires_grad()) torch::autograd::backward({y}, {grad_outputs.at(0)});
    }
    variable_list grads;
    grads.reserve(inputs.size() + 2);
    grads.emplace_back();  // body
    for (const auto &d : inputs) grads.push_back(d.requires_grad() ? d.grad() : at::Tensor());
    grads.emplace_back();  // anchor
    return grads;
  }
};

}  // namespace

extern "C" {

ct_error *ct_error_new(int32_t code, const char *message) { return make_error(code, message); }

ct_error *ct_checkpoint(ct_checkpoint_fn fn, void *context, void (*release)(void *), const ct_tensor *inputs,
                        int64_t n, ct_tensor *out) {
  c10::intrusive_ptr<Body> body;
  try {
    body = c10::make_intrusive<Body>(fn, context, release);
  } catch (...) {
    if (release) release(context);
    return make_error(CT_ERR_OUT_OF_MEMORY, "could not allocate the checkpoint's context");
  }
  return guard([&] {
    auto anchor = at::empty({0}, at::TensorOptions().dtype(at::kFloat)).requires_grad_(true);
    *out = wrap(Checkpoint::apply(std::move(body), at::TensorList(unwrap_list(inputs, n)), anchor));
  });
}

}  // extern "C"
