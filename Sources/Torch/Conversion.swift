// dtype/device conversion, memory format, and the in-place updates optimizers and loaders use.
import CTorch

extension Tensor {
    public func to(_ dtype: DType) throws -> Tensor {
        try produce { ct_to(handle, dtype.rawValue, -1, 0, false, $0) }
    }
    public func to(_ device: Device, dtype: DType? = nil) throws -> Tensor {
        try produce { ct_to(handle, dtype?.rawValue ?? -1, device.type, device.index, false, $0) }
    }
    /// A copy that shares nothing with `self`.
    public func clone() throws -> Tensor {
        try produce { ct_to(handle, -1, -1, 0, true, $0) }
    }
    /// The same values laid out NHWC in memory (the layout cuDNN convolutions prefer).
    public func channelsLast() throws -> Tensor { try produce { ct_to_channels_last(handle, $0) } }

    // In-place updates run without recording autograd history.
    public func copy_(_ source: Tensor) throws { try check(ct_copy_(handle, source.handle)) }
    /// Like PyTorch's `self.data = source`: this tensor object (held by its store, its layer, an optimizer) now
    /// holds `source`'s data, device and dtype, keeping `requiresGrad`. A second handle from `shared()` keeps
    /// the old data.
    public func replaceData(with source: Tensor) throws { try check(ct_replace_data_(handle, source.handle)) }
    public func zero_() throws { try check(ct_zero_(handle)) }
    public func fill_(_ value: Double) throws { try check(ct_fill_(handle, value)) }
    public func mul_(_ s: Double) throws { try check(ct_mul_scalar_(handle, s)) }
    /// self += alpha · other
    public func add_(_ other: Tensor, alpha: Double = 1) throws { try check(ct_add_(handle, other.handle, alpha)) }
}
