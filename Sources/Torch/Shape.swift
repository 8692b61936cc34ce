// Views, reshapes, joins and indexing.
import CTorch

extension Tensor {
    @inline(__always) func withDims(_ dims: [Int],
                                    _ body: (UnsafePointer<Int64>?, Int64, UnsafeMutablePointer<ct_tensor?>) -> UnsafeMutablePointer<ct_error>?) throws -> Tensor {
        try produce { out in int64s(dims).withUnsafeBufferPointer { body($0.baseAddress, Int64(dims.count), out) } }
    }

    public func reshape(_ shape: [Int]) throws -> Tensor { try withDims(shape) { ct_reshape(handle, $0, $1, $2) } }
    public func view(_ shape: [Int]) throws -> Tensor { try withDims(shape) { ct_view(handle, $0, $1, $2) } }
    public func permute(_ dims: [Int]) throws -> Tensor { try withDims(dims) { ct_permute(handle, $0, $1, $2) } }
    public func expand(_ shape: [Int]) throws -> Tensor { try withDims(shape) { ct_expand(handle, $0, $1, $2) } }
    public func repeated(_ repeats: [Int]) throws -> Tensor { try withDims(repeats) { ct_repeat(handle, $0, $1, $2) } }
    public func flip(_ dims: [Int]) throws -> Tensor { try withDims(dims) { ct_flip(handle, $0, $1, $2) } }
    public func transpose(_ dim0: Int, _ dim1: Int) throws -> Tensor {
        try produce { ct_transpose(handle, Int64(dim0), Int64(dim1), $0) }
    }
    public func contiguous() throws -> Tensor { try produce { ct_contiguous(handle, $0) } }
    public func flatten(from start: Int = 0, to end: Int = -1) throws -> Tensor {
        try produce { ct_flatten(handle, Int64(start), Int64(end), $0) }
    }
    public func unsqueeze(_ dim: Int) throws -> Tensor { try produce { ct_unsqueeze(handle, Int64(dim), $0) } }
    public func squeeze(_ dim: Int) throws -> Tensor { try produce { ct_squeeze(handle, Int64(dim), $0) } }
    public func squeeze() throws -> Tensor { try produce { ct_squeeze_all(handle, $0) } }
    public func tril(_ diagonal: Int = 0) throws -> Tensor { try produce { ct_tril(handle, Int64(diagonal), $0) } }
    public func triu(_ diagonal: Int = 0) throws -> Tensor { try produce { ct_triu(handle, Int64(diagonal), $0) } }

    /// `self[..., start:end:step, ...]` along `dim`; `end` nil means to the end.
    public func slice(dim: Int, start: Int = 0, end: Int? = nil, step: Int = 1) throws -> Tensor {
        try produce { ct_slice(handle, Int64(dim), Int64(start), Int64(end ?? Int(Int64.max)), Int64(step), $0) }
    }
    /// `torch.narrow`: `length` elements from `start` (negative counts from the end) along `dim`;
    /// unlike a slice, a range that does not fit is an error.
    public func narrow(dim: Int, start: Int, length: Int) throws -> Tensor {
        try produce { ct_narrow(handle, Int64(dim), Int64(start), Int64(length), $0) }
    }
    /// `self.select(dim, index)`: removes `dim`.
    public func select(dim: Int, index: Int) throws -> Tensor {
        try produce { ct_select(handle, Int64(dim), Int64(index), $0) }
    }
    public func indexSelect(dim: Int, index: Tensor) throws -> Tensor {
        try produce { ct_index_select(handle, Int64(dim), index.handle, $0) }
    }
    public func gather(dim: Int, index: Tensor) throws -> Tensor {
        try produce { ct_gather(handle, Int64(dim), index.handle, $0) }
    }

    /// `torch.chunk`: pieces of ceil(size / chunks), the last one possibly smaller (so possibly
    /// fewer than `chunks` pieces); an empty dimension gives `chunks` empty pieces.
    public func chunk(_ chunks: Int, dim: Int = 0) throws -> [Tensor] {
        guard chunks > 0 else { throw TorchError.invalidArgument("chunk expects `chunks` to be greater than 0, got: \(chunks)") }
        let n = try checkedSize(dim)
        if n == 0 { return try split(sizes: [Int](repeating: 0, count: chunks), dim: dim) }
        return try split(size: (n + chunks - 1) / chunks, dim: dim)
    }
    /// `torch.split` with one size: pieces of `size`, the last possibly smaller; an empty dimension
    /// gives one empty piece.
    public func split(size: Int, dim: Int = 0) throws -> [Tensor] {
        guard size > 0 else { throw TorchError.invalidArgument("split size must be positive, got \(size)") }
        let n = try checkedSize(dim)
        if n == 0 { return [try narrow(dim: dim, start: 0, length: 0)] }
        return try split(sizes: stride(from: 0, to: n, by: size).map { Swift.min(size, n - $0) }, dim: dim)
    }
    /// `torch.split` with explicit sizes that must add up to the dimension.
    public func split(sizes: [Int], dim: Int = 0) throws -> [Tensor] {
        let n = try checkedSize(dim)
        guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == n else {
            throw TorchError.invalidArgument("split sizes \(sizes) do not add up to dimension \(dim) of \(shape)")
        }
        var handles = [ct_tensor?](repeating: nil, count: sizes.count)
        try sizes.map(Int64.init).withUnsafeBufferPointer { s in
            try handles.withUnsafeMutableBufferPointer { out in
                try check(ct_split_with_sizes(handle, s.baseAddress, Int64(sizes.count), Int64(dim), out.baseAddress))
            }
        }
        let pieces = handles.compactMap { $0.map(Tensor.init(handle:)) }
        guard pieces.count == sizes.count else {
            throw TorchError.other("split_with_sizes returned \(pieces.count) of \(sizes.count) pieces")
        }
        return pieces
    }

    public static func cat(_ tensors: [Tensor], dim: Int = 0) throws -> Tensor {
        try produce { out in tensors.map(\.handle).withUnsafeBufferPointer { ct_cat($0.baseAddress, Int64(tensors.count), Int64(dim), out) } }
    }
    public static func stack(_ tensors: [Tensor], dim: Int = 0) throws -> Tensor {
        try produce { out in tensors.map(\.handle).withUnsafeBufferPointer { ct_stack($0.baseAddress, Int64(tensors.count), Int64(dim), out) } }
    }
}

// MARK: - Reductions

extension Tensor {
    public func sum(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        try withDims(dims) { ct_sum(handle, $0, $1, keepDim, $2) }
    }
    public func mean(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        try withDims(dims) { ct_mean(handle, $0, $1, keepDim, $2) }
    }
    /// Variance with Bessel's `correction` (1 = unbiased, PyTorch's default; 0 = population).
    public func variance(dims: [Int] = [], correction: Int = 1, keepDim: Bool = false) throws -> Tensor {
        try withDims(dims) { ct_var(handle, $0, $1, Int64(correction), keepDim, $2) }
    }
    /// Vector p-norm over `dims` (all when empty), as `torch.linalg.vector_norm`.
    public func norm(p: Double = 2, dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
        try withDims(dims) { ct_norm(handle, p, $0, $1, keepDim, $2) }
    }
    public func max() throws -> Tensor { try produce { ct_max_all(handle, $0) } }
    public func min() throws -> Tensor { try produce { ct_min_all(handle, $0) } }
    public func max(dim: Int, keepDim: Bool = false) throws -> (values: Tensor, indices: Tensor) {
        try producePair { ct_max_dim(handle, Int64(dim), keepDim, $0, $1) }
    }
    public func min(dim: Int, keepDim: Bool = false) throws -> (values: Tensor, indices: Tensor) {
        try producePair { ct_min_dim(handle, Int64(dim), keepDim, $0, $1) }
    }
    public func argmax(dim: Int, keepDim: Bool = false) throws -> Tensor {
        try produce { ct_argmax(handle, Int64(dim), keepDim, $0) }
    }
    public func cumsum(dim: Int) throws -> Tensor { try produce { ct_cumsum(handle, Int64(dim), $0) } }
    public func cumprod(dim: Int) throws -> Tensor { try produce { ct_cumprod(handle, Int64(dim), $0) } }
    public func topk(_ k: Int, dim: Int = -1, largest: Bool = true, sorted: Bool = true) throws -> (values: Tensor, indices: Tensor) {
        try producePair { ct_topk(handle, Int64(k), Int64(dim), largest, sorted, $0, $1) }
    }
    /// Stable sort along `dim`.
    public func sort(dim: Int = -1, descending: Bool = false) throws -> (values: Tensor, indices: Tensor) {
        try producePair { ct_sort(handle, Int64(dim), descending, $0, $1) }
    }
    /// True when every element is non-zero.
    public func all() throws -> Bool {
        var v = false
        try check(ct_all(handle, &v))
        return v
    }
    /// `torch.equal`: same shape and same elements.
    public func equal(_ other: Tensor) throws -> Bool {
        var v = false
        try check(ct_equal(handle, other.handle, &v))
        return v
    }
}
