// Elementwise math, neural-network functions, shape ops and reductions.
#include <cmath>

#include "internal.h"

using namespace ctorch;

namespace {

at::Tensor unary(ct_unary_op op, const at::Tensor &a) {
  switch (op) {
    case CT_NEG: return at::neg(a);
    case CT_EXP: return at::exp(a);
    case CT_LOG: return at::log(a);
    case CT_SQRT: return at::sqrt(a);
    case CT_RSQRT: return at::rsqrt(a);
    case CT_SIN: return at::sin(a);
    case CT_COS: return at::cos(a);
    case CT_ABS: return at::abs(a);
    case CT_TANH: return at::tanh(a);
    case CT_SIGMOID: return at::sigmoid(a);
    case CT_RELU: return at::relu(a);
    case CT_SILU: return at::silu(a);
    case CT_GELU: return at::gelu(a, "none");
    case CT_GELU_TANH: return at::gelu(a, "tanh");
    case CT_ERF: return at::erf(a);
    case CT_FLOOR: return at::floor(a);
    case CT_CEIL: return at::ceil(a);
    case CT_ROUND: return at::round(a);
    case CT_SIGN: return at::sign(a);
    case CT_RECIPROCAL: return at::reciprocal(a);
    case CT_SQUARE: return at::square(a);
    case CT_ISNAN: return at::isnan(a);
    case CT_ISFINITE: return at::isfinite(a);
    case CT_LOGICAL_NOT: return at::logical_not(a);
    case CT_LOG1P: return at::log1p(a);
    case CT_EXPM1: return at::expm1(a);
  }
  TORCH_CHECK(false, "unknown unary op ", static_cast<int>(op));
}

at::Tensor binary(ct_binary_op op, const at::Tensor &a, const at::Tensor &b) {
  switch (op) {
    case CT_ADD: return at::add(a, b);
    case CT_SUB: return at::sub(a, b);
    case CT_MUL: return at::mul(a, b);
    case CT_DIV: return at::div(a, b);
    case CT_POW: return at::pow(a, b);
    case CT_MAXIMUM: return at::maximum(a, b);
    case CT_MINIMUM: return at::minimum(a, b);
    case CT_EQ: return at::eq(a, b);
    case CT_NE: return at::ne(a, b);
    case CT_LT: return at::lt(a, b);
    case CT_LE: return at::le(a, b);
    case CT_GT: return at::gt(a, b);
    case CT_GE: return at::ge(a, b);
    case CT_LOGICAL_AND: return at::logical_and(a, b);
    case CT_LOGICAL_OR: return at::logical_or(a, b);
    case CT_REMAINDER: return at::remainder(a, b);
    case CT_FLOOR_DIVIDE: return at::floor_divide(a, b);
    case CT_ATAN2: return at::atan2(a, b);
  }
  TORCH_CHECK(false, "unknown binary op ", static_cast<int>(op));
}

// Tensor-scalar forms through ATen's scalar overloads, so type promotion follows PyTorch
// (a Python float does not promote a float16 tensor to float32).
at::Tensor binary_scalar(ct_binary_op op, const at::Tensor &a, const at::Scalar &s) {
  switch (op) {
    case CT_ADD: return at::add(a, s);
    case CT_SUB: return at::sub(a, s);
    case CT_MUL: return at::mul(a, s);
    case CT_DIV: return at::div(a, s);
    case CT_POW: return at::pow(a, s);
    case CT_EQ: return at::eq(a, s);
    case CT_NE: return at::ne(a, s);
    case CT_LT: return at::lt(a, s);
    case CT_LE: return at::le(a, s);
    case CT_GT: return at::gt(a, s);
    case CT_GE: return at::ge(a, s);
    case CT_REMAINDER: return at::remainder(a, s);
    case CT_FLOOR_DIVIDE: return at::floor_divide(a, s);
    default: return binary(op, a, at::scalar_tensor(s, a.options()));
  }
}

at::Tensor scalar_binary(ct_binary_op op, const at::Scalar &s, const at::Tensor &a) {
  switch (op) {
    case CT_ADD: return at::add(a, s);
    case CT_MUL: return at::mul(a, s);
    case CT_SUB: return at::rsub(a, s);
    case CT_POW: return at::pow(s, a);
    case CT_DIV: return at::mul(at::reciprocal(a), s);
    default: return binary(op, at::scalar_tensor(s, a.options()), a);
  }
}

}  // namespace

extern "C" {

// MARK: - Elementwise

ct_error *ct_unary(ct_unary_op op, ct_tensor a, ct_tensor *out) {
  return guard([&] { *out = wrap(unary(op, unwrap(a))); });
}
ct_error *ct_binary(ct_binary_op op, ct_tensor a, ct_tensor b, ct_tensor *out) {
  return guard([&] { *out = wrap(binary(op, unwrap(a), unwrap(b))); });
}
ct_error *ct_binary_scalar(ct_binary_op op, ct_tensor a, double s, bool scalar_first, ct_tensor *out) {
  return guard([&] {
    const at::Tensor &t = unwrap(a);
    // C has one scalar type; a whole number next to an integer or bool tensor acts as a Python int
    // (int64 stays int64, as in `t * 2`), any other value as a Python float (`t * 2.5` promotes).
    bool whole = std::trunc(s) == s && std::fabs(s) <= 9007199254740992.0;  // 2^53: exact in a double
    at::Scalar scalar = whole && at::isIntegralType(t.scalar_type(), /*includeBool=*/true)
                            ? at::Scalar(static_cast<int64_t>(s))
                            : at::Scalar(s);
    *out = wrap(scalar_first ? scalar_binary(op, scalar, t) : binary_scalar(op, t, scalar));
  });
}
ct_error *ct_where(ct_tensor condition, ct_tensor a, ct_tensor b, ct_tensor *out) {
  return guard([&] { *out = wrap(at::where(unwrap(condition), unwrap(a), unwrap(b))); });
}
ct_error *ct_clamp(ct_tensor a, bool has_min, double min, bool has_max, double max, ct_tensor *out) {
  return guard([&] {
    c10::optional<at::Scalar> lo = has_min ? c10::optional<at::Scalar>(min) : c10::nullopt;
    c10::optional<at::Scalar> hi = has_max ? c10::optional<at::Scalar>(max) : c10::nullopt;
    *out = wrap(at::clamp(unwrap(a), lo, hi));
  });
}
ct_error *ct_masked_fill(ct_tensor a, ct_tensor mask, double value, ct_tensor *out) {
  return guard([&] { *out = wrap(at::masked_fill(unwrap(a), unwrap(mask), value)); });
}
ct_error *ct_lerp(ct_tensor a, ct_tensor b, double weight, ct_tensor *out) {
  return guard([&] { *out = wrap(at::lerp(unwrap(a), unwrap(b), weight)); });
}

// MARK: - Linear algebra and neural-network functions

ct_error *ct_matmul(ct_tensor a, ct_tensor b, ct_tensor *out) {
  return guard([&] { *out = wrap(at::matmul(unwrap(a), unwrap(b))); });
}
ct_error *ct_bmm(ct_tensor a, ct_tensor b, ct_tensor *out) {
  return guard([&] { *out = wrap(at::bmm(unwrap(a), unwrap(b))); });
}
ct_error *ct_baddbmm(ct_tensor input, ct_tensor b1, ct_tensor b2, double beta, double alpha, ct_tensor *out) {
  return guard([&] { *out = wrap(at::baddbmm(unwrap(input), unwrap(b1), unwrap(b2), beta, alpha)); });
}
ct_error *ct_linalg_solve(ct_tensor a, ct_tensor b, ct_tensor *out) {
  return guard([&] { *out = wrap(at::linalg_solve(unwrap(a), unwrap(b))); });
}
ct_error *ct_einsum(const char *equation, const ct_tensor *tensors, int64_t n, ct_tensor *out) {
  return guard([&] {
    *out = wrap(at::einsum(equation, unwrap_list(tensors, n)));
  });
}
ct_error *ct_linear(ct_tensor x, ct_tensor weight, ct_tensor bias, ct_tensor *out) {
  return guard([&] { *out = wrap(at::linear(unwrap(x), unwrap(weight), optional(bias))); });
}
ct_error *ct_conv2d(ct_tensor x, ct_tensor weight, ct_tensor bias, const int64_t stride[2],
                    const int64_t padding[2], const int64_t dilation[2], int64_t groups, ct_tensor *out) {
  return guard([&] {
    *out = wrap(at::conv2d(unwrap(x), unwrap(weight), optional(bias), dims(stride, 2), dims(padding, 2),
                           dims(dilation, 2), groups));
  });
}
ct_error *ct_group_norm(ct_tensor x, int64_t groups, ct_tensor weight, ct_tensor bias, double eps, ct_tensor *out) {
  return guard([&] { *out = wrap(at::group_norm(unwrap(x), groups, optional(weight), optional(bias), eps)); });
}
ct_error *ct_layer_norm(ct_tensor x, const int64_t *normalized_shape, int64_t ndim, ct_tensor weight,
                        ct_tensor bias, double eps, ct_tensor *out) {
  return guard([&] {
    *out = wrap(at::layer_norm(unwrap(x), dims(normalized_shape, ndim), optional(weight), optional(bias), eps));
  });
}
ct_error *ct_softmax(ct_tensor x, int64_t dim, ct_tensor *out) {
  return guard([&] { *out = wrap(at::softmax(unwrap(x), dim)); });
}
ct_error *ct_log_softmax(ct_tensor x, int64_t dim, ct_tensor *out) {
  return guard([&] { *out = wrap(at::log_softmax(unwrap(x), dim)); });
}
ct_error *ct_scaled_dot_product_attention(ct_tensor q, ct_tensor k, ct_tensor v, ct_tensor mask,
                                          double dropout_p, bool is_causal, double scale, ct_tensor *out) {
  return guard([&] {
    c10::optional<double> s = scale < 0 ? c10::nullopt : c10::optional<double>(scale);
    *out = wrap(at::scaled_dot_product_attention(unwrap(q), unwrap(k), unwrap(v), optional(mask), dropout_p,
                                                 is_causal, s));
  });
}
ct_error *ct_interpolate(ct_tensor x, ct_interpolate_mode mode, const int64_t out_size[2], bool align_corners,
                         bool antialias, ct_tensor *out) {
  return guard([&] {
    const at::Tensor &input = unwrap(x);
    TORCH_CHECK(input.dim() == 4, "interpolate expects a 4-D (N, C, H, W) tensor, got ", input.dim(), "-D");
    auto size = dims(out_size, 2);
    switch (mode) {
      case CT_INTERP_NEAREST:
        TORCH_CHECK(!antialias, "antialias applies to bilinear and bicubic only");
        *out = wrap(at::upsample_nearest2d(input, size));
        return;
      case CT_INTERP_NEAREST_EXACT:
        TORCH_CHECK(!antialias, "antialias applies to bilinear and bicubic only");
        *out = wrap(at::_upsample_nearest_exact2d(input, size));
        return;
      case CT_INTERP_BILINEAR:
        *out = wrap(antialias ? at::_upsample_bilinear2d_aa(input, size, align_corners)
                              : at::upsample_bilinear2d(input, size, align_corners));
        return;
      case CT_INTERP_BICUBIC:
        *out = wrap(antialias ? at::_upsample_bicubic2d_aa(input, size, align_corners)
                              : at::upsample_bicubic2d(input, size, align_corners));
        return;
    }
    TORCH_CHECK(false, "unknown interpolation mode ", static_cast<int>(mode));
  });
}
ct_error *ct_pad(ct_tensor x, const int64_t *pads, int64_t npads, ct_pad_mode mode, double value, ct_tensor *out) {
  return guard([&] {
    const char *name = mode == CT_PAD_REFLECT ? "reflect" : mode == CT_PAD_REPLICATE ? "replicate" : "constant";
    c10::optional<double> v = mode == CT_PAD_CONSTANT ? c10::optional<double>(value) : c10::nullopt;
    *out = wrap(at::pad(unwrap(x), dims(pads, npads), name, v));
  });
}
ct_error *ct_embedding(ct_tensor weight, ct_tensor indices, ct_tensor *out) {
  return guard([&] { *out = wrap(at::embedding(unwrap(weight), unwrap(indices))); });
}
ct_error *ct_dropout(ct_tensor x, double p, bool train, ct_tensor *out) {
  return guard([&] { *out = wrap(at::dropout(unwrap(x), p, train)); });
}
ct_error *ct_mse_loss(ct_tensor a, ct_tensor b, int32_t reduction, ct_tensor *out) {
  return guard([&] { *out = wrap(at::mse_loss(unwrap(a), unwrap(b), reduction)); });
}
ct_error *ct_cross_entropy(ct_tensor logits, ct_tensor target, int32_t reduction, int64_t ignore_index,
                           ct_tensor *out) {
  return guard([&] {
    *out = wrap(at::cross_entropy_loss(unwrap(logits), unwrap(target), c10::nullopt, reduction, ignore_index, 0.0));
  });
}

// MARK: - Shape and indexing

ct_error *ct_reshape(ct_tensor t, const int64_t *shape, int64_t ndim, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).reshape(dims(shape, ndim))); });
}
ct_error *ct_view(ct_tensor t, const int64_t *shape, int64_t ndim, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).view(dims(shape, ndim))); });
}
ct_error *ct_permute(ct_tensor t, const int64_t *d, int64_t ndim, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).permute(dims(d, ndim))); });
}
ct_error *ct_transpose(ct_tensor t, int64_t dim0, int64_t dim1, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).transpose(dim0, dim1)); });
}
ct_error *ct_contiguous(ct_tensor t, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).contiguous()); });
}
ct_error *ct_flatten(ct_tensor t, int64_t start, int64_t end, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).flatten(start, end)); });
}
ct_error *ct_unsqueeze(ct_tensor t, int64_t dim, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).unsqueeze(dim)); });
}
ct_error *ct_squeeze(ct_tensor t, int64_t dim, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).squeeze(dim)); });
}
ct_error *ct_squeeze_all(ct_tensor t, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).squeeze()); });
}
ct_error *ct_expand(ct_tensor t, const int64_t *shape, int64_t ndim, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).expand(dims(shape, ndim))); });
}
ct_error *ct_repeat(ct_tensor t, const int64_t *repeats, int64_t ndim, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).repeat(dims(repeats, ndim))); });
}
ct_error *ct_cat(const ct_tensor *tensors, int64_t n, int64_t dim, ct_tensor *out) {
  return guard([&] { *out = wrap(at::cat(unwrap_list(tensors, n), dim)); });
}
ct_error *ct_stack(const ct_tensor *tensors, int64_t n, int64_t dim, ct_tensor *out) {
  return guard([&] { *out = wrap(at::stack(unwrap_list(tensors, n), dim)); });
}
ct_error *ct_slice(ct_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).slice(dim, start, end, step)); });
}
ct_error *ct_narrow(ct_tensor t, int64_t dim, int64_t start, int64_t length, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).narrow(dim, start, length)); });
}
// Views of consecutive pieces; their backward is one cat (narrow's would zero-fill the whole input per piece).
ct_error *ct_split_with_sizes(ct_tensor t, const int64_t *sizes, int64_t n, int64_t dim, ct_tensor *outs) {
  return guard([&] {
    auto pieces = unwrap(t).split_with_sizes(c10::IntArrayRef(sizes, static_cast<size_t>(n)), dim);
    for (int64_t i = 0; i < n; ++i) outs[i] = wrap(pieces[static_cast<size_t>(i)]);
  });
}
ct_error *ct_select(ct_tensor t, int64_t dim, int64_t index, ct_tensor *out) {
  return guard([&] { *out = wrap(unwrap(t).select(dim, index)); });
}
ct_error *ct_index_select(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor *out) {
  return guard([&] { *out = wrap(at::index_select(unwrap(t), dim, unwrap(index))); });
}
ct_error *ct_gather(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor *out) {
  return guard([&] { *out = wrap(at::gather(unwrap(t), dim, unwrap(index))); });
}
ct_error *ct_flip(ct_tensor t, const int64_t *d, int64_t ndim, ct_tensor *out) {
  return guard([&] { *out = wrap(at::flip(unwrap(t), dims(d, ndim))); });
}
ct_error *ct_tril(ct_tensor t, int64_t diagonal, ct_tensor *out) {
  return guard([&] { *out = wrap(at::tril(unwrap(t), diagonal)); });
}
ct_error *ct_triu(ct_tensor t, int64_t diagonal, ct_tensor *out) {
  return guard([&] { *out = wrap(at::triu(unwrap(t), diagonal)); });
}

// MARK: - Reductions

ct_error *ct_sum(ct_tensor t, const int64_t *d, int64_t ndim, bool keepdim, ct_tensor *out) {
  return guard([&] {
    *out = wrap(ndim == 0 ? at::sum(unwrap(t)) : at::sum(unwrap(t), dims(d, ndim), keepdim));
  });
}
ct_error *ct_mean(ct_tensor t, const int64_t *d, int64_t ndim, bool keepdim, ct_tensor *out) {
  return guard([&] {
    *out = wrap(ndim == 0 ? at::mean(unwrap(t)) : at::mean(unwrap(t), dims(d, ndim), keepdim));
  });
}
ct_error *ct_var(ct_tensor t, const int64_t *d, int64_t ndim, int64_t correction, bool keepdim, ct_tensor *out) {
  return guard([&] {
    at::OptionalIntArrayRef over = ndim == 0 ? at::OptionalIntArrayRef() : at::OptionalIntArrayRef(dims(d, ndim));
    *out = wrap(at::var(unwrap(t), over, at::Scalar(correction), keepdim));
  });
}
ct_error *ct_norm(ct_tensor t, double p, const int64_t *d, int64_t ndim, bool keepdim, ct_tensor *out) {
  return guard([&] {
    at::OptionalIntArrayRef over = ndim == 0 ? at::OptionalIntArrayRef() : at::OptionalIntArrayRef(dims(d, ndim));
    *out = wrap(at::linalg_vector_norm(unwrap(t), p, over, keepdim));
  });
}
ct_error *ct_max_all(ct_tensor t, ct_tensor *out) {
  return guard([&] { *out = wrap(at::max(unwrap(t))); });
}
ct_error *ct_min_all(ct_tensor t, ct_tensor *out) {
  return guard([&] { *out = wrap(at::min(unwrap(t))); });
}
ct_error *ct_max_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices) {
  return guard([&] {
    auto r = at::max(unwrap(t), dim, keepdim);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  });
}
ct_error *ct_min_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices) {
  return guard([&] {
    auto r = at::min(unwrap(t), dim, keepdim);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  });
}
ct_error *ct_argmax(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *out) {
  return guard([&] { *out = wrap(at::argmax(unwrap(t), dim, keepdim)); });
}
ct_error *ct_cumsum(ct_tensor t, int64_t dim, ct_tensor *out) {
  return guard([&] { *out = wrap(at::cumsum(unwrap(t), dim)); });
}
ct_error *ct_cumprod(ct_tensor t, int64_t dim, ct_tensor *out) {
  return guard([&] { *out = wrap(at::cumprod(unwrap(t), dim)); });
}
ct_error *ct_topk(ct_tensor t, int64_t k, int64_t dim, bool largest, bool sorted, ct_tensor *values,
                  ct_tensor *indices) {
  return guard([&] {
    auto r = at::topk(unwrap(t), k, dim, largest, sorted);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  });
}
ct_error *ct_sort(ct_tensor t, int64_t dim, bool descending, ct_tensor *values, ct_tensor *indices) {
  return guard([&] {
    auto r = at::sort(unwrap(t), /*stable=*/true, dim, descending);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  });
}
ct_error *ct_all(ct_tensor t, bool *out) {
  return guard([&] { *out = at::all(unwrap(t)).item<bool>(); });
}
ct_error *ct_equal(ct_tensor a, ct_tensor b, bool *out) {
  return guard([&] { *out = at::equal(unwrap(a), unwrap(b)); });
}

}  // extern "C"
