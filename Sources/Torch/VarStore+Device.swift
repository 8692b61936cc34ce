// Moving a model between devices in place, as PyTorch's `module.to(device)` does (for generation with
// `--offload`, where each model visits the GPU only while it runs).

extension VarStore {
    /// Moves every parameter, and the tensors of the adapters attached to its layers, to `device`. Layers keep
    /// their tensor objects (each gets new data), so a model built on this store runs on `device` afterwards.
    /// Values are copied exactly; a no-op for tensors already there.
    public func move(to device: Device) throws {
        var tensors = named.map(\.1)
        for (_, module) in modules() {
            if let linear = module as? Linear { tensors += linear.adapters.flatMap(\.tensors) }
            if let conv = module as? Conv2d { tensors += conv.adapters.flatMap(\.tensors) }
        }
        try noGrad {
            for t in tensors where t.device != device { try t.replaceData(with: t.to(device)) }
        }
        self.device = device
    }
}
