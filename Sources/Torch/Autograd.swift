// Reverse-mode differentiation through libtorch's autograd engine.
import CTorch

extension Tensor {
    public var requiresGrad: Bool { ct_requires_grad(handle) }
    public var isLeaf: Bool { ct_is_leaf(handle) }

    /// Marks a leaf tensor as a parameter whose gradient is accumulated into `grad`.
    /// As in PyTorch, only a leaf's flag can be turned off (use `detach()` for a result without history).
    @discardableResult
    public func requiresGrad(_ flag: Bool) throws -> Tensor {
        guard flag || isLeaf else {
            throw TorchError.invalidArgument(
                "you can only change requires_grad flags of leaf variables; use detach() to get a tensor without history")
        }
        try check(ct_set_requires_grad(handle, flag))
        return self
    }

    /// Backpropagates from this tensor (a scalar unless `gradient` is given).
    public func backward(gradient: Tensor? = nil, retainGraph: Bool = false) throws {
        try check(ct_backward(handle, gradient?.handle, retainGraph))
    }

    /// The accumulated gradient, nil before any backward pass reached this tensor.
    public var grad: Tensor? {
        var out: ct_tensor?
        guard (try? check(ct_grad(handle, &out))) != nil, let out else { return nil }
        return Tensor(handle: out)
    }

    /// Drops the gradient (PyTorch's `zero_grad(set_to_none=True)`).
    public func zeroGrad() throws { try check(ct_zero_grad(handle)) }

    /// The same data without autograd history.
    public func detach() throws -> Tensor { try produce { ct_detach(handle, $0) } }
}

/// Runs `body` with gradient recording off (`torch.no_grad()`); thread-local, restored on exit.
public func noGrad<T>(_ body: () throws -> T) rethrows -> T {
    let previous = ct_set_grad_enabled(false)
    defer { ct_set_grad_enabled(previous) }
    return try body()
}

/// Whether operations on this thread currently record autograd history.
public var isGradEnabled: Bool { ct_is_grad_enabled() }

/// `torch.nn.utils.clip_grad_norm_`: scales the gradients of `parameters` in place so their total
/// `normType`-norm is at most `maxNorm`; returns the norm before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Double, normType: Double = 2) throws -> Double {
    let total = try produce { out in
        parameters.map(\.handle).withUnsafeBufferPointer {
            ct_clip_grad_norm_($0.baseAddress, Int64(parameters.count), maxNorm, normType, out)
        }
    }
    return try total.item()
}
