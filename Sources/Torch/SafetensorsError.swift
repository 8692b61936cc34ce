// Why a safetensors file cannot be read or written: one case per rule of the reference implementation
// (its `SafeTensorError` names), each message naming the file.

public struct SafetensorsError: Error, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        case io(String)
        case headerTooSmall
        case headerTooLarge(UInt64)
        case invalidHeaderLength(Int)
        case invalidHeader
        case invalidHeaderStart
        case invalidHeaderDeserialization(String)
        case invalidOffset(String)
        case misalignedSlice(String)
        case tensorInvalidInfo(String)
        case validationOverflow(String)
        /// The bytes the tensors' offsets cover, and the bytes the file holds after the header.
        case metadataIncompleteBuffer(tensorBytes: Int, dataBytes: Int)
        case unsupportedDType(String, String)
        case missingTensor(String)
        /// A tensor name the writer cannot store ("__metadata__" is the metadata's key).
        case invalidTensorName(String)
    }
    public let path: String
    public let reason: Reason

    public init(path: String, reason: Reason) {
        self.path = path
        self.reason = reason
    }

    public var description: String {
        let detail: String
        switch reason {
        case .io(let m): detail = m
        case .headerTooSmall: detail = "file is shorter than the 8-byte header length"
        case .headerTooLarge(let n):
            detail = "header length \(n) exceeds the format's limit of \(Safetensors.maxHeaderSize) bytes"
        case .invalidHeaderLength(let n): detail = "header length \(n) runs past the end of the file"
        case .invalidHeader: detail = "header is not valid UTF-8"
        case .invalidHeaderStart:
            detail = "header does not start with '{' (it must be a JSON object, with no leading whitespace)"
        case .invalidHeaderDeserialization(let m): detail = "invalid header: \(m)"
        case .invalidOffset(let n):
            detail = "tensor '\(n)' has data offsets that do not start where the previous tensor ends "
                + "(a gap, an overlap, a first tensor not at 0, or an end before the start)"
        case .misalignedSlice(let n): detail = "tensor '\(n)' does not fill a whole number of bytes"
        case .tensorInvalidInfo(let n):
            detail = "tensor '\(n)' has a byte length that does not match its shape and dtype"
        case .validationOverflow(let n): detail = "tensor '\(n)' has a shape too large to address"
        case .metadataIncompleteBuffer(let covered, let held):
            let what = held > covered ? "\(held - covered) trailing bytes" : "\(covered - held) bytes missing (truncated?)"
            detail = "the tensors cover \(covered) bytes of data but the file holds \(held): \(what)"
        case .unsupportedDType(let n, let d): detail = "tensor '\(n)' has dtype \(d), which Inkwell does not load"
        case .missingTensor(let n): detail = "no tensor named '\(n)'"
        case .invalidTensorName(let n): detail = "'\(n)' is reserved for the metadata and cannot name a tensor"
        }
        return "\(path): \(detail)"
    }
}
