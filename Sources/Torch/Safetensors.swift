// The safetensors format (huggingface/safetensors, safetensors/src/tensor.rs): reader with every
// validation rule of the reference implementation, memory-mapped and zero-copy; writer byte-compatible
// with `safetensors.torch.save_file`.
import AtomicFile
import Foundation

public struct SafetensorsEntry: Equatable, Sendable {
    /// The file's dtype name ("F32", "BF16", ...).
    public let dtypeName: String
    public let shape: [Int]
    /// Byte range relative to the start of the data buffer.
    public let start: Int
    public let end: Int

    public var dtype: DType? { Safetensors.dtype(named: dtypeName) }
}

public enum Safetensors {
    static let maxHeaderSize = 100_000_000

    /// Bit sizes of every dtype the format defines.
    static let bitSizes: [String: Int] = [
        "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
        "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
        "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
    ]
    /// The reference's dtype enum order (increasing alignment); the writer puts the highest first.
    static let alignmentRank: [String: Int] = Dictionary(uniqueKeysWithValues: [
        "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
        "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64",
    ].enumerated().map { ($1, $0) })

    public static func dtype(named name: String) -> DType? {
        switch name {
        case "BOOL": return .bool
        case "U8": return .uint8
        case "I8": return .int8
        case "I16": return .int16
        case "I32": return .int32
        case "I64": return .int64
        case "F16": return .float16
        case "BF16": return .bfloat16
        case "F32": return .float32
        case "F64": return .float64
        default: return nil
        }
    }

    public static func name(of dtype: DType) -> String {
        switch dtype {
        case .bool: return "BOOL"
        case .uint8: return "U8"
        case .int8: return "I8"
        case .int16: return "I16"
        case .int32: return "I32"
        case .int64: return "I64"
        case .float16: return "F16"
        case .bfloat16: return "BF16"
        case .float32: return "F32"
        case .float64: return "F64"
        }
    }

    /// Names by data offsets, as the reference sorts them; ties (empty tensors) by name bytes.
    static func fileOrder(_ entries: [String: SafetensorsEntry]) -> [String] {
        entries.sorted { a, b in
            (a.value.start, a.value.end) != (b.value.start, b.value.end)
                ? (a.value.start, a.value.end) < (b.value.start, b.value.end)
                : a.key.utf8.lexicographicallyPrecedes(b.key.utf8)
        }.map(\.key)
    }
}

/// A safetensors file opened for reading. Opening validates the whole header; tensors are
/// materialised on demand and, when aligned, are backed by the file's pages instead of a copy.
public final class SafetensorsFile: @unchecked Sendable {  // immutable after init
    public let path: String
    public let entries: [String: SafetensorsEntry]
    public let metadata: [String: String]
    let file: MappedFile
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        // The length is checked before the header is touched: a bogus one never drives a read or an allocation.
        let n = file.base.loadUnaligned(as: UInt64.self).littleEndian
        guard n <= UInt64(Safetensors.maxHeaderSize) else {
            throw SafetensorsError(path: path, reason: .headerTooLarge(n))
        }
        let headerSize = Int(n)
        guard 8 + headerSize <= file.size else {
            throw SafetensorsError(path: path, reason: .invalidHeaderLength(headerSize))
        }
        let header = UnsafeRawBufferPointer(start: file.base + 8, count: headerSize)
        dataStart = 8 + headerSize
        (entries, metadata) = try Safetensors.parseHeader(header, dataSize: file.size - dataStart, path: path)
    }

    public convenience init(url: URL) throws { try self.init(path: url.path) }

    /// Tensor names in file (offset) order.
    public var keys: [String] { Safetensors.fileOrder(entries) }

    /// Tensors smaller than a page are copied: a copy costs less than a mapping of their own.
    static let borrowThreshold = 4096

    /// The named tensor on the CPU, in the file's dtype.
    public func tensor(_ name: String) throws -> Tensor { try materialize(name).tensor }

    /// The tensor, and the mapping it borrows (nil when it was copied out of the file).
    func materialize(_ name: String) throws -> (tensor: Tensor, mapping: TensorMapping?) {
        guard let e = entries[name] else { throw SafetensorsError(path: path, reason: .missingTensor(name)) }
        guard let dtype = e.dtype else {
            throw SafetensorsError(path: path, reason: .unsupportedDType(name, e.dtypeName))
        }
        guard file.isIntact else {
            throw SafetensorsError(path: path, reason: .io("the file changed size since it was opened"))
        }
        let offset = dataStart + e.start, count = e.end - e.start
        // Zero-copy when the bytes can be the tensor's storage: aligned for the element type (a mapping
        // starts on a page) and large enough to be worth a mapping of their own. Each borrowed tensor
        // gets its own mapping, so freeing it releases its pages and writing to it affects no other.
        if count >= Self.borrowThreshold, offset % dtype.size == 0,
           let mapping = file.mapPrivately(offset: offset, count: count) {
            let bytes = UnsafeRawBufferPointer(start: mapping.data, count: count)
            return (try Tensor.borrowing(bytes, shape: e.shape, dtype: dtype, owner: mapping), mapping)
        }
        let bytes = UnsafeRawBufferPointer(start: file.base + offset, count: count)
        return (try Tensor(bytes: bytes, shape: e.shape, dtype: dtype), nil)
    }

    /// Every tensor, by name.
    public func tensors() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in entries.keys { out[name] = try tensor(name) }
        return out
    }
}

extension Safetensors {
    /// Reads a whole file: tensors by name and the `__metadata__` strings.
    public static func load(_ url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let file = try SafetensorsFile(url: url)
        return (try file.tensors(), file.metadata)
    }

    /// The header bytes and the tensors in file order, laid out as the reference writer (`prepare`)
    /// does: tensors by dtype alignment (largest first) then name bytes, offsets contiguous from 0,
    /// compact JSON with `__metadata__` first (present whenever `metadata` is non-nil, as in Python),
    /// padded with spaces to a multiple of 8 so the data starts aligned.
    static func layout(_ tensors: [String: Tensor], metadata: [String: String]?, path: String)
        throws -> (header: [UInt8], ordered: [Tensor]) {
        if tensors["__metadata__"] != nil {
            throw SafetensorsError(path: path, reason: .invalidTensorName("__metadata__"))
        }
        let ordered = tensors.map { (key: $0.key, tensor: $0.value, rank: alignmentRank[name(of: $0.value.dtype)] ?? 0) }
            .sorted { a, b in a.rank != b.rank ? a.rank > b.rank : a.key.utf8.lexicographicallyPrecedes(b.key.utf8) }
        var fields: [String] = []
        if let metadata {
            // The reference emits its hash map in arbitrary order; sorted keys make ours deterministic.
            let pairs = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                .map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for (name, t, _) in ordered {
            let size = t.byteCount
            let shape = t.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(name)):{\"dtype\":\"\(self.name(of: t.dtype))\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + size)]}")
            offset += size
        }
        var header = Array("{\(fields.joined(separator: ","))}".utf8)
        header.append(contentsOf: repeatElement(0x20, count: (8 - header.count % 8) % 8))
        guard header.count <= maxHeaderSize else {
            throw SafetensorsError(path: path, reason: .headerTooLarge(UInt64(header.count)))
        }
        var prefix = [UInt8]()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { prefix.append(contentsOf: $0) }
        return (prefix + header, ordered.map(\.tensor))
    }

    /// The bytes of a safetensors file, as `safetensors.torch.save` makes them.
    public static func serialize(_ tensors: [String: Tensor], metadata: [String: String]? = nil) throws -> [UInt8] {
        let (header, ordered) = try layout(tensors, metadata: metadata, path: "<memory>")
        var out = header
        out.reserveCapacity(header.count + ordered.reduce(0) { $0 + $1.byteCount })
        for t in ordered { out.append(contentsOf: try t.bytes()) }
        return out
    }

    /// Writes a file atomically (a temporary sibling, then a rename), one tensor's bytes in memory
    /// at a time, so an interrupted write never leaves a truncated file under the final name.
    public static func save(_ tensors: [String: Tensor], metadata: [String: String]? = nil, to url: URL) throws {
        let (header, ordered) = try layout(tensors, metadata: metadata, path: url.path)
        try writeAtomically(to: url) { write in
            try header.withUnsafeBytes { try write($0) }
            for t in ordered { try t.bytes().withUnsafeBytes { try write($0) } }
        }
    }

    /// A JSON string as serde_json (and Python's `json.dumps(..., ensure_ascii=False)`) writes it:
    /// escapes quotes, backslashes and control characters (short forms where JSON has them, else
    /// \u00xx in lowercase hex) and nothing else.
    public static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
