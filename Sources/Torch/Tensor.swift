// The tensor handle: a Swift object that owns one libtorch tensor and frees it in deinit.
import CTorch

public final class Tensor: CustomStringConvertible {
    let handle: ct_tensor

    init(handle: ct_tensor) { self.handle = handle }
    deinit { ct_tensor_free(handle) }

    // MARK: Metadata

    public var rank: Int { Int(ct_dim(handle)) }
    public var shape: [Int] {
        let n = ct_dim(handle)
        var sizes = [Int64](repeating: 0, count: Int(n))
        sizes.withUnsafeMutableBufferPointer { ct_sizes(handle, $0.baseAddress, n) }
        return sizes.map(Int.init)
    }
    public var strides: [Int] {
        let n = ct_dim(handle)
        var values = [Int64](repeating: 0, count: Int(n))
        values.withUnsafeMutableBufferPointer { ct_strides(handle, $0.baseAddress, n) }
        return values.map(Int.init)
    }
    /// The size of dimension `dim` (negative counts from the end). `dim` must be in range: this is
    /// for code that knows the rank; ops taking a dim from outside throw for a bad one instead.
    public func size(_ dim: Int) -> Int {
        let s = shape
        return s[dim < 0 ? dim + s.count : dim]
    }

    /// The size of dimension `dim`, or libtorch's "Dimension out of range" as a thrown error.
    func checkedSize(_ dim: Int) throws -> Int {
        let s = shape
        let wrapped = dim < 0 ? dim + s.count : dim
        guard s.indices.contains(wrapped) else {
            let low = -Swift.max(s.count, 1), high = Swift.max(s.count, 1) - 1
            throw TorchError.invalidArgument(
                "Dimension out of range (expected to be in range of [\(low), \(high)], but got \(dim))")
        }
        return s[wrapped]
    }
    public var count: Int { Int(ct_numel(handle)) }
    public var dtype: DType {
        // Every tensor here is made through this module, whose dtypes DType covers; an unknown
        // code (complex, quantized) cannot arise from a file, since loaders validate dtypes first.
        DType(rawValue: ct_scalar_type(handle)) ?? .float32
    }
    public var device: Device {
        var type: Int32 = 0
        var index: Int32 = 0
        ct_device(handle, &type, &index)
        return type == 1 ? .cuda(Int(index)) : type == 2 ? .vgpu : .cpu
    }
    public var isContiguous: Bool { ct_is_contiguous(handle) }
    public var isChannelsLast: Bool { ct_is_channels_last(handle) }
    /// Size in bytes of the elements (not of the storage).
    public var byteCount: Int { count * dtype.size }

    /// PyTorch's printout of the tensor.
    public var description: String {
        var out: UnsafeMutablePointer<CChar>?
        guard (try? check(ct_to_string(handle, &out))) != nil, let out else { return "Tensor(\(shape), \(dtype))" }
        defer { ct_string_free(out) }
        return String(cString: out)
    }

    /// A second handle to the same tensor: same storage, same autograd identity.
    public func shared() -> Tensor { Tensor(handle: ct_tensor_share(handle)) }
}

// MARK: - Creation

extension Tensor {
    /// Copies a Swift array into a new CPU tensor of the element's dtype.
    public convenience init<T: TensorElement>(_ values: [T], shape: [Int]? = nil) throws {
        let dims = shape ?? [values.count]
        let needed = try elementCount(dims)
        guard needed == values.count else {
            throw TorchError.invalidArgument("shape \(dims) needs \(needed) values, got \(values.count)")
        }
        let handle = try values.withUnsafeBytes { raw in
            try Tensor.makeHandle { out in
                int64s(dims).withUnsafeBufferPointer {
                    ct_from_bytes(raw.baseAddress, raw.count, $0.baseAddress, Int64(dims.count), T.dtype.rawValue, out)
                }
            }
        }
        self.init(handle: handle)
    }

    /// A 0-dimensional tensor.
    public convenience init<T: TensorElement>(scalar: T) throws {
        try self.init([scalar], shape: [])
    }

    /// Copies raw little-endian bytes into a new CPU tensor.
    public convenience init(bytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) throws {
        let handle = try Tensor.makeHandle { out in
            int64s(shape).withUnsafeBufferPointer {
                ct_from_bytes(bytes.baseAddress, bytes.count, $0.baseAddress, Int64(shape.count), dtype.rawValue, out)
            }
        }
        self.init(handle: handle)
    }

    /// Wraps memory without copying. `owner` is retained until libtorch releases the last tensor
    /// that uses the memory, so the buffer outlives every view of it.
    public static func borrowing(
        _ buffer: UnsafeRawBufferPointer, shape: [Int], dtype: DType, owner: AnyObject
    ) throws -> Tensor {
        let (bytes, overflow) = try elementCount(shape).multipliedReportingOverflow(by: dtype.size)
        guard !overflow, bytes == buffer.count else {
            throw TorchError.invalidArgument("\(buffer.count) bytes do not hold \(shape) of \(dtype)")
        }
        let context = Unmanaged.passRetained(owner).toOpaque()
        let release: @convention(c) (UnsafeMutableRawPointer?) -> Void = { ctx in
            if let ctx { Unmanaged<AnyObject>.fromOpaque(ctx).release() }
        }
        do {
            return try produce { out in
                int64s(shape).withUnsafeBufferPointer {
                    ct_from_blob(UnsafeMutableRawPointer(mutating: buffer.baseAddress), $0.baseAddress,
                                 Int64(shape.count), dtype.rawValue, release, context, out)
                }
            }
        } catch {
            Unmanaged<AnyObject>.fromOpaque(context).release()
            throw error
        }
    }

    static func makeHandle(_ body: (UnsafeMutablePointer<ct_tensor?>) -> UnsafeMutablePointer<ct_error>?) throws -> ct_tensor {
        var out: ct_tensor?
        try check(body(&out))
        guard let out else { throw TorchError.other("libtorch returned no tensor") }
        return out
    }

    public static func empty(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try produce { out in
            int64s(shape).withUnsafeBufferPointer {
                ct_empty($0.baseAddress, Int64(shape.count), dtype.rawValue, device.type, device.index, out)
            }
        }
    }
    public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try produce { out in
            int64s(shape).withUnsafeBufferPointer {
                ct_full($0.baseAddress, Int64(shape.count), value, dtype.rawValue, device.type, device.index, out)
            }
        }
    }
    public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try full(shape, 0, dtype: dtype, device: device)
    }
    public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
        try full(shape, 1, dtype: dtype, device: device)
    }
    public static func zeros(like t: Tensor) throws -> Tensor { try zeros(t.shape, dtype: t.dtype, device: t.device) }
    public static func ones(like t: Tensor) throws -> Tensor { try ones(t.shape, dtype: t.dtype, device: t.device) }

    /// `torch.arange(start, end, step)`. Without a dtype, like PyTorch: int64 when start, end and step
    /// are whole numbers, float32 otherwise.
    public static func arange(_ start: Double = 0, _ end: Double, step: Double = 1, dtype: DType? = nil,
                              device: Device = .cpu) throws -> Tensor {
        let whole = [start, end, step].allSatisfy { $0.rounded() == $0 }
        let type = dtype ?? (whole ? .int64 : .float32)
        return try produce { ct_arange(start, end, step, type.rawValue, device.type, device.index, $0) }
    }
    /// `torch.arange(end)`: 0, 1, ..., up to but excluding `end`.
    public static func arange(_ end: Double, dtype: DType? = nil, device: Device = .cpu) throws -> Tensor {
        try arange(0, end, step: 1, dtype: dtype, device: device)
    }
    public static func linspace(_ start: Double, _ end: Double, steps: Int, dtype: DType = .float32,
                                device: Device = .cpu) throws -> Tensor {
        try produce { ct_linspace(start, end, Int64(steps), dtype.rawValue, device.type, device.index, $0) }
    }
}

// MARK: - Reading values back

extension Tensor {
    /// The elements in row-major order, converted to `T`'s dtype if needed (any device).
    public func toArray<T: TensorElement>(_: T.Type = T.self) throws -> [T] {
        let source = dtype == T.dtype ? self : try to(T.dtype)
        let n = source.count
        return try [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            try check(ct_copy_to_bytes(source.handle, buffer.baseAddress, n * MemoryLayout<T>.stride))
            initialized = n
        }
    }

    /// The elements' bytes in row-major order (for writers).
    public func bytes() throws -> [UInt8] {
        let n = byteCount
        return try [UInt8](unsafeUninitializedCapacity: n) { buffer, initialized in
            try check(ct_copy_to_bytes(handle, buffer.baseAddress, n))
            initialized = n
        }
    }

    /// Copies the elements into `destination`, which must hold exactly `byteCount` bytes.
    public func copyBytes(to destination: UnsafeMutableRawBufferPointer) throws {
        try check(ct_copy_to_bytes(handle, destination.baseAddress, destination.count))
    }

    /// The value of a one-element tensor.
    public func item() throws -> Double {
        var v = 0.0
        try check(ct_item_double(handle, &v))
        return v
    }
    public func itemInt() throws -> Int {
        var v: Int64 = 0
        try check(ct_item_int64(handle, &v))
        return Int(v)
    }
}

/// The number of elements of `shape`; throws for a negative size or a product that overflows, which
/// would otherwise trap (an absurd shape is user input, not a programmer error).
func elementCount(_ shape: [Int]) throws -> Int {
    var count = 1
    for size in shape {
        guard size >= 0 else { throw TorchError.invalidArgument("negative dimension \(size) in shape \(shape)") }
        let (product, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow else { throw TorchError.invalidArgument("shape \(shape) has too many elements") }
        count = product
    }
    return count
}

@inline(__always)
func int64s(_ values: [Int]) -> [Int64] { values.map { Int64($0) } }
