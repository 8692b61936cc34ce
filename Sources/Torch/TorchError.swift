// Errors from libtorch surface as Swift errors; no C++ exception ever reaches Swift.
import CTorch

public enum TorchError: Error, CustomStringConvertible, Equatable {
    /// libtorch rejected an operation (bad shape, dtype, argument); the message is libtorch's.
    case torch(String)
    /// The device (or host) ran out of memory: retry smaller, or free something first.
    case outOfMemory(String)
    /// Anything else the shim caught.
    case other(String)
    /// An argument rejected on the Swift side before reaching libtorch.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .torch(let m): return m
        case .outOfMemory(let m): return "out of memory: \(m)"
        case .other(let m): return m
        case .invalidArgument(let m): return m
        }
    }
}

/// Converts a shim error into a thrown `TorchError`, freeing it.
@inline(__always)
func check(_ error: UnsafeMutablePointer<ct_error>?) throws {
    guard let error else { return }
    defer { ct_error_free(error) }
    let message = error.pointee.message.map { String(cString: $0) } ?? ""
    switch error.pointee.code {
    case Int32(CT_ERR_OUT_OF_MEMORY.rawValue): throw TorchError.outOfMemory(message)
    case Int32(CT_ERR_TORCH.rawValue): throw TorchError.torch(message)
    default: throw TorchError.other(message)
    }
}

/// Calls a shim function that produces one tensor through an out-parameter.
@inline(__always)
func produce(_ body: (UnsafeMutablePointer<ct_tensor?>) -> UnsafeMutablePointer<ct_error>?) throws -> Tensor {
    var out: ct_tensor?
    try check(body(&out))
    guard let out else { throw TorchError.other("libtorch returned no tensor") }
    return Tensor(handle: out)
}

/// Calls a shim function that produces two tensors (values, indices).
@inline(__always)
func producePair(
    _ body: (UnsafeMutablePointer<ct_tensor?>, UnsafeMutablePointer<ct_tensor?>) -> UnsafeMutablePointer<ct_error>?
) throws -> (Tensor, Tensor) {
    var a: ct_tensor?
    var b: ct_tensor?
    try check(body(&a, &b))
    guard let a, let b else { throw TorchError.other("libtorch returned no tensor") }
    return (Tensor(handle: a), Tensor(handle: b))
}
