// The virtual GPU ("vgpu"): a second libtorch device, registered as PrivateUse1, that keeps its data in host
// memory and computes with the CPU kernels, but follows CUDA's rules: a tensor on it never mixes with a CPU
// tensor (0-dim CPU scalars aside, as CUDA allows), a random op on it needs a generator of its own device, and
// its autograd runs on a device worker thread. Code that forgets a `.to(device)` fails on it exactly where it
// would fail on CUDA, so `make test` proves device-correctness without a GPU; and since its kernels are the
// CPU's, every result can be compared with the CPU run's.
//
// How: an allocator and a device guard for PrivateUse1, the few kernels every backend must own (empty,
// views, copies, resize), and one boxed fallback for everything else: it checks the devices, gives each vgpu
// argument a CPU alias of the same memory, runs the CPU kernel, and maps the results back (the input itself
// for in-place ops, a view of the input's storage for views, the new storage otherwise). Nothing is copied.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/EmptyTensor.h>
#include <ATen/detail/PrivateUse1HooksInterface.h>
#include <ATen/native/Resize.h>
#include <ATen/ops/as_strided_native.h>
#include <ATen/ops/view_native.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/library.h>

#include <cstring>
#include <mutex>
#include <set>

#include "internal.h"

namespace {

constexpr c10::DeviceType kVGPU = c10::DeviceType::PrivateUse1;
const c10::Device kDevice(kVGPU, 0);

// MARK: - Memory

struct VGPUAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t n) override {
    void *p = n == 0 ? nullptr : c10::alloc_cpu(n);
    return {p, p, &c10::free_cpu, kDevice};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &c10::free_cpu; }
  void copy_data(void *dest, const void *src, std::size_t count) const override { std::memcpy(dest, src, count); }
};
VGPUAllocator allocator;

void release_storage(void *ctx) { delete static_cast<c10::Storage *>(ctx); }

// A storage on `device` over the same bytes as `source`, which it keeps alive. Resizable with the device's
// allocator: an out= kernel may grow its output (then the alias gets new memory, see sync_back).
c10::Storage rehome(const c10::Storage &source, c10::Device device) {
  c10::DataPtr data(source.mutable_data(), new c10::Storage(source), &release_storage, device);
  return c10::Storage(c10::Storage::use_byte_size_t(), source.nbytes(), std::move(data),
                      device.is_cpu() ? c10::GetCPUAllocator() : &allocator, /*resizable=*/true);
}
at::Tensor rehome(const at::Tensor &t, c10::Device device, c10::DispatchKey key) {
  auto out = at::detail::make_tensor<c10::TensorImpl>(rehome(t.storage(), device), c10::DispatchKeySet(key), t.dtype());
  out.unsafeGetTensorImpl()->set_sizes_and_strides(t.sizes(), t.strides(), t.storage_offset());
  return out;
}
at::Tensor cpu_alias(const at::Tensor &t) { return rehome(t, c10::Device(c10::kCPU), c10::DispatchKey::CPU); }

// MARK: - Device guard and hooks (one device, synchronous, one default stream)

struct VGPUGuard final : c10::impl::DeviceGuardImplInterface {
  c10::DeviceType type() const override { return kVGPU; }
  c10::Device exchangeDevice(c10::Device) const override { return kDevice; }
  c10::Device getDevice() const override { return kDevice; }
  void setDevice(c10::Device d) const override {
    TORCH_CHECK(d.type() == kVGPU && d.index() <= 0, "vgpu has one device, vgpu:0; got ", d);
  }
  void uncheckedSetDevice(c10::Device) const noexcept override {}
  c10::Stream getStream(c10::Device) const override { return c10::Stream(c10::Stream::DEFAULT, kDevice); }
  c10::Stream exchangeStream(c10::Stream) const override { return c10::Stream(c10::Stream::DEFAULT, kDevice); }
  c10::DeviceIndex deviceCount() const noexcept override { return 1; }
  void record(void **, const c10::Stream &, const c10::DeviceIndex, const c10::EventFlag) const override {}
  void block(void *, const c10::Stream &) const override {}
  bool queryEvent(void *) const override { return true; }
  void destroyEvent(void *, const c10::DeviceIndex) const noexcept override {}
  bool queryStream(const c10::Stream &) const override { return true; }
  void synchronizeStream(const c10::Stream &) const override {}
  void synchronizeEvent(void *) const override {}
  void synchronizeDevice(const c10::DeviceIndex) const override {}
};

// A generator of the vgpu device that draws from a CPU generator of its own: the same numbers as a CPU
// generator with the same seed, but a CPU generator is refused for vgpu tensors, as CUDA refuses it.
struct VGPUGenerator final : c10::GeneratorImpl {
  at::Generator cpu;
  explicit VGPUGenerator(uint64_t seed)
      : c10::GeneratorImpl(kDevice, c10::DispatchKeySet(c10::DispatchKey::PrivateUse1)),
        cpu(at::make_generator<at::CPUGeneratorImpl>(seed)) {}
  void set_current_seed(uint64_t seed) override { cpu.set_current_seed(seed); }
  void set_offset(uint64_t offset) override { cpu.set_offset(offset); }
  uint64_t get_offset() const override { return cpu.get_offset(); }
  uint64_t current_seed() const override { return cpu.current_seed(); }
  uint64_t seed() override { return cpu.seed(); }
  void set_state(const c10::TensorImpl &state) override { cpu.unsafeGetGeneratorImpl()->set_state(state); }
  c10::intrusive_ptr<c10::TensorImpl> get_state() const override { return cpu.unsafeGetGeneratorImpl()->get_state(); }
  VGPUGenerator *clone_impl() const override {
    auto *copy = new VGPUGenerator(0);
    copy->cpu = cpu.clone();
    return copy;
  }
};

struct VGPUHooks final : at::PrivateUse1HooksInterface {
  bool isBuilt() const override { return true; }
  bool isAvailable() const override { return true; }
  bool hasPrimaryContext(c10::DeviceIndex) const override { return true; }
  c10::DeviceIndex deviceCount() const override { return 1; }
  const at::Generator &getDefaultGenerator(c10::DeviceIndex) const override {
    static at::Generator g = at::make_generator<VGPUGenerator>(c10::default_rng_seed_val);
    return g;
  }
  at::Generator getNewGenerator(c10::DeviceIndex) const override {
    return at::make_generator<VGPUGenerator>(c10::default_rng_seed_val);
  }
  at::Device getDeviceFromPtr(void *) const override { return kDevice; }
  c10::Allocator *getPinnedMemoryAllocator() const override { return c10::GetCPUAllocator(); }
  void resizePrivateUse1Bytes(const c10::Storage &storage, size_t n) const override {
    at::native::resize_bytes_nocuda(storage, static_cast<int64_t>(n));
  }
};

// MARK: - Kernels every backend owns

at::Tensor empty(c10::IntArrayRef size, std::optional<at::ScalarType> dtype, std::optional<at::Layout>,
                 std::optional<at::Device>, std::optional<bool>, std::optional<at::MemoryFormat> format) {
  return at::detail::empty_generic(size, &allocator, c10::DispatchKeySet(c10::DispatchKey::PrivateUse1),
                                   dtype.value_or(at::get_default_dtype_as_scalartype()), format);
}
at::Tensor empty_strided(c10::IntArrayRef size, c10::IntArrayRef stride, std::optional<at::ScalarType> dtype,
                         std::optional<at::Layout>, std::optional<at::Device>, std::optional<bool>) {
  return at::detail::empty_strided_generic(size, stride, &allocator,
                                           c10::DispatchKeySet(c10::DispatchKey::PrivateUse1),
                                           dtype.value_or(at::get_default_dtype_as_scalartype()));
}
const at::Tensor &resize_(const at::Tensor &self, c10::IntArrayRef size, std::optional<at::MemoryFormat> format) {
  auto *impl = self.unsafeGetTensorImpl();
  int64_t numel = 1;
  for (auto s : size) numel *= s;
  const int64_t needed = (self.storage_offset() + numel) * static_cast<int64_t>(self.dtype().itemsize());
  if (numel > 0 && static_cast<int64_t>(self.storage().nbytes()) < needed) {
    at::native::resize_bytes_nocuda(self.storage(), needed);
  }
  impl->set_sizes_contiguous(size);
  if (format.has_value() && *format != at::MemoryFormat::Preserve) impl->empty_tensor_restride(*format);
  return self;
}
at::Tensor copy_from(const at::Tensor &self, const at::Tensor &dst, bool) {
  auto target = dst.device().is_cpu() ? dst : cpu_alias(dst);
  target.copy_(self.device().is_cpu() ? self : cpu_alias(self));
  return dst;
}
at::Tensor copy_from_and_resize(const at::Tensor &self, const at::Tensor &dst) {
  if (dst.sizes() != self.sizes()) dst.resize_(self.sizes());
  return copy_from(self, dst, false);
}
// CUDA's convolutions are the "overrideable" entry points for other backends: run the CPU convolution.
at::Tensor convolution(const at::Tensor &input, const at::Tensor &weight, const std::optional<at::Tensor> &bias,
                       c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation, bool transposed,
                       c10::IntArrayRef output_padding, int64_t groups);
std::tuple<at::Tensor, at::Tensor, at::Tensor> convolution_backward(
    const at::Tensor &grad, const at::Tensor &input, const at::Tensor &weight, c10::IntArrayRef stride,
    c10::IntArrayRef padding, c10::IntArrayRef dilation, bool transposed, c10::IntArrayRef output_padding,
    int64_t groups, std::array<bool, 3> mask);

// MARK: - The fallback: CPU kernels on CPU aliases, after CUDA's device checks

[[noreturn]] void mixed(const c10::OperatorHandle &op, const at::Tensor &t) {
  TORCH_CHECK(false, "Expected all tensors to be on the same device, but found at least two devices, ", kDevice,
              " and ", t.device(), "! (in ", op.schema().name(), ", a ", t.dim(), "-dim tensor of shape ",
              t.sizes(), ")");
}

struct Aliases {
  std::vector<std::pair<at::Tensor, at::Tensor>> pairs;  // (vgpu original, CPU alias)
  bool any_vgpu = false;
};

// Index tensors may stay on the CPU for indexing ops, as on CUDA.
bool cpu_indices_allowed(const c10::OperatorHandle &op, const c10::Argument &arg) {
  const auto &name = op.schema().name();
  return arg.name() == "indices" && (name == "aten::index" || name == "aten::index_put_" || name == "aten::_index_put_impl_");
}

c10::IValue to_cpu(const c10::OperatorHandle &op, const c10::Argument &arg, const c10::IValue &v, Aliases &aliases) {
  auto convert = [&](const at::Tensor &t) -> at::Tensor {
    if (!t.defined()) return t;
    if (t.device().type() == kVGPU) {
      aliases.any_vgpu = true;
      auto alias = cpu_alias(t);
      aliases.pairs.emplace_back(t, alias);
      return alias;
    }
    if (t.device().is_cpu() && t.dim() > 0 && !cpu_indices_allowed(op, arg)) mixed(op, t);
    return t;
  };
  if (v.isTensor()) return convert(v.toTensor());
  if (v.isTensorList()) {
    c10::List<at::Tensor> list;
    for (const at::Tensor &t : v.toTensorList()) list.push_back(convert(t));
    return list;
  }
  if (v.isOptionalTensorList()) {
    c10::List<std::optional<at::Tensor>> list;
    for (const std::optional<at::Tensor> &t : v.toOptionalTensorList()) {
      list.push_back(t.has_value() ? std::optional<at::Tensor>(convert(*t)) : std::nullopt);
    }
    return list;
  }
  if (v.isDevice() && v.toDevice().type() == kVGPU) return c10::IValue(c10::Device(c10::kCPU));
  return v;
}

c10::IValue to_vgpu(const c10::IValue &v, const Aliases &aliases) {
  auto convert = [&](const at::Tensor &t) -> at::Tensor {
    if (!t.defined() || !t.device().is_cpu()) return t;
    for (const auto &[original, alias] : aliases.pairs) {
      if (t.unsafeGetTensorImpl() == alias.unsafeGetTensorImpl()) return original;  // in place: self itself
    }
    for (const auto &[original, alias] : aliases.pairs) {
      if (t.storage().unsafeGetStorageImpl() == alias.storage().unsafeGetStorageImpl()) {
        return at::native::as_strided_tensorimpl(original, t.sizes(), t.strides(), t.storage_offset());
      }
    }
    return rehome(t, kDevice, c10::DispatchKey::PrivateUse1);
  };
  if (v.isTensor()) return convert(v.toTensor());
  if (v.isTensorList()) {
    c10::List<at::Tensor> list;
    for (const at::Tensor &t : v.toTensorList()) list.push_back(convert(t));
    return list;
  }
  return v;
}

// An out= kernel may have resized an alias (new memory, or new sizes over the same memory): give the vgpu
// tensor the same storage and geometry, so that it is the result, as on a real device.
void sync_back(const Aliases &aliases) {
  for (const auto &[original, alias] : aliases.pairs) {
    auto *impl = original.unsafeGetTensorImpl();
    if (alias.storage().data() != original.storage().data()) {
      impl->set_storage_keep_dtype(rehome(alias.storage(), kDevice));
    }
    if (alias.sizes() != original.sizes() || alias.strides() != original.strides() ||
        alias.storage_offset() != original.storage_offset()) {
      impl->set_sizes_and_strides(alias.sizes(), alias.strides(), alias.storage_offset());
    }
  }
}

void fallback(const c10::OperatorHandle &op, c10::DispatchKeySet, torch::jit::Stack *stack) {
  const auto &arguments = op.schema().arguments();
  const size_t first = stack->size() - arguments.size();
  Aliases aliases;
  std::vector<c10::IValue *> generators;
  for (size_t i = 0; i < arguments.size(); ++i) {
    c10::IValue &v = (*stack)[first + i];
    if (v.isGenerator()) {
      generators.push_back(&v);
      continue;
    }
    v = to_cpu(op, arguments[i], v, aliases);
  }
  for (c10::IValue *g : generators) {
    const at::Generator gen = g->toGenerator();
    if (gen.device().type() == kVGPU) {
      *g = c10::IValue(gen.get<VGPUGenerator>()->cpu);
    } else {
      TORCH_CHECK(!aliases.any_vgpu, "Expected a '", kDevice.type(), "' device type for generator but found '",
                  gen.device().type(), "' (in ", op.schema().name(), ")");
    }
  }
  op.redispatchBoxed(c10::DispatchKeySet(c10::DispatchKey::CPU), stack);
  sync_back(aliases);
  const size_t returns = op.schema().returns().size();
  for (size_t i = stack->size() - returns; i < stack->size(); ++i) (*stack)[i] = to_vgpu((*stack)[i], aliases);
}

at::Tensor convolution(const at::Tensor &input, const at::Tensor &weight, const std::optional<at::Tensor> &bias,
                       c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation, bool transposed,
                       c10::IntArrayRef output_padding, int64_t groups) {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("aten::convolution", "");
  torch::jit::Stack stack{input, weight, bias, stride, padding, dilation, transposed, output_padding, groups};
  fallback(op, {}, &stack);
  return stack.back().toTensor();
}
std::tuple<at::Tensor, at::Tensor, at::Tensor> convolution_backward(
    const at::Tensor &grad, const at::Tensor &input, const at::Tensor &weight, c10::IntArrayRef stride,
    c10::IntArrayRef padding, c10::IntArrayRef dilation, bool transposed, c10::IntArrayRef output_padding,
    int64_t groups, std::array<bool, 3> mask) {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("aten::convolution_backward", "");
  // convolution_backward takes the bias's sizes, which the overrideable form leaves out: [out channels].
  std::vector<int64_t> bias_sizes{transposed ? weight.size(1) * groups : weight.size(0)};
  torch::jit::Stack stack{grad, input, weight, c10::IValue(bias_sizes), stride, padding, dilation, transposed,
                          output_padding, groups, c10::List<bool>({mask[0], mask[1], mask[2]})};
  fallback(op, {}, &stack);
  return {stack[0].toTensor(), stack[1].toTensor(), stack[2].toTensor()};
}

// MARK: - Registration
// The device guard at load: the autograd engine sizes its device threads at the process's first backward
// pass, from the guards registered then, and its count (1) changes nothing where CUDA is present. The rest on
// first use, so a process that never touches the vgpu (every real run) keeps libtorch as it was: once
// PrivateUse1 is named, libtorch takes it for the process's accelerator.

c10::impl::DeviceGuardImplRegistrar guard_at_load(kVGPU, new VGPUGuard());

std::once_flag registered;
void register_vgpu() {
  c10::register_privateuse1_backend("vgpu");
  c10::SetAllocator(kVGPU, &allocator);
  static VGPUHooks hooks;
  at::RegisterPrivateUse1HooksInterface(&hooks);
  static torch::Library kernels(torch::Library::IMPL, "aten", c10::DispatchKey::PrivateUse1, __FILE__, __LINE__);
  std::set<std::string> own;  // "aten::name.overload" of the kernels above, which the loop below leaves alone
  auto impl = [&](const char *name, auto &&kernel) {
    kernels.impl(name, std::forward<decltype(kernel)>(kernel));
    own.insert(std::string("aten::") + name);
  };
  impl("empty.memory_format", TORCH_FN(empty));
  impl("empty_strided", TORCH_FN(empty_strided));
  impl("as_strided", TORCH_FN(at::native::as_strided_tensorimpl));
  impl("view", TORCH_FN(at::native::view));
  impl("resize_", TORCH_FN(resize_));
  impl("_copy_from", TORCH_FN(copy_from));
  impl("_copy_from_and_resize", TORCH_FN(copy_from_and_resize));
  impl("convolution_overrideable", TORCH_FN(convolution));
  impl("convolution_backward_overrideable", TORCH_FN(convolution_backward));
  // An op with a kernel of CUDA's own (e.g. native_group_norm) runs the CPU's kernel here, as it would run
  // CUDA's there; without this the dispatcher would pick the op's generic CompositeExplicitAutograd
  // decomposition, which no real device runs (and which differs: math_group_norm rejects channels-last).
  // Ops that decompose for autograd (CompositeImplicitAutograd) keep decomposing, as on CUDA. Where this
  // libtorch has no CUDA, the CPU's own kernels stand in for CUDA's.
  auto &dispatcher = c10::Dispatcher::singleton();
  const auto device_kernel = dispatcher.findSchemaOrThrow("aten::add", "Tensor").hasKernelForDispatchKey(c10::DispatchKey::CUDA)
                                 ? c10::DispatchKey::CUDA : c10::DispatchKey::CPU;
  for (const c10::OperatorName &name : dispatcher.getAllOpNames()) {
    const std::string full = name.overload_name.empty() ? name.name : name.name + "." + name.overload_name;
    if (name.name.rfind("aten::", 0) != 0 || own.count(full) != 0) continue;
    auto op = dispatcher.findOp(name);
    if (!op || !op->hasSchema() || !op->hasKernelForDispatchKey(device_kernel) ||
        !op->hasKernelForDispatchKey(c10::DispatchKey::CPU) ||
        op->hasKernelForDispatchKey(c10::DispatchKey::CompositeImplicitAutograd) ||
        op->hasKernelForDispatchKey(c10::DispatchKey::PrivateUse1)) {
      continue;
    }
    kernels.impl(full.substr(6).c_str(), torch::CppFunction::makeFromBoxedFunction<&fallback>());
  }
  static torch::Library everything_else(torch::Library::IMPL, "_", c10::DispatchKey::PrivateUse1, __FILE__, __LINE__);
  everything_else.fallback(torch::CppFunction::makeFromBoxedFunction<&fallback>());
}

}  // namespace

void ctorch::ensure_vgpu() { std::call_once(registered, register_vgpu); }
at::Generator ctorch::vgpu_generator(uint64_t seed) {
  ensure_vgpu();
  return at::make_generator<VGPUGenerator>(seed);
}
