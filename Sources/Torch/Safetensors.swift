// The safetensors format (huggingface/safetensors): reader with every validation rule of the
// reference implementation, memory-mapped and zero-copy; writer byte-compatible with
// `safetensors.torch.save_file`.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct SafetensorsError: Error, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        case io(String)
        case headerTooSmall
        case headerTooLarge(Int)
        case invalidHeaderLength(Int)
        case invalidHeader
        case invalidHeaderStart
        case invalidHeaderDeserialization(String)
        case invalidOffset(String)
        case misalignedSlice(String)
        case tensorInvalidInfo(String)
        case validationOverflow(String)
        case metadataIncompleteBuffer
        case unsupportedDType(String, String)
        case missingTensor(String)
    }
    public let path: String
    public let reason: Reason

    public var description: String {
        let detail: String
        switch reason {
        case .io(let m): detail = m
        case .headerTooSmall: detail = "file is shorter than the 8-byte header length"
        case .headerTooLarge(let n): detail = "header length \(n) exceeds the 100 MB limit"
        case .invalidHeaderLength(let n): detail = "header length \(n) runs past the end of the file"
        case .invalidHeader: detail = "header is not valid UTF-8"
        case .invalidHeaderStart: detail = "header does not start with '{'"
        case .invalidHeaderDeserialization(let m): detail = "header is not a valid safetensors JSON object: \(m)"
        case .invalidOffset(let n): detail = "tensor '\(n)' has data offsets that leave a gap, overlap or run backwards"
        case .misalignedSlice(let n): detail = "tensor '\(n)' does not fill a whole number of bytes"
        case .tensorInvalidInfo(let n): detail = "tensor '\(n)' has a byte length that does not match its shape and dtype"
        case .validationOverflow(let n): detail = "tensor '\(n)' is too large to address"
        case .metadataIncompleteBuffer: detail = "the data buffer's length does not match the tensors (trailing or missing bytes)"
        case .unsupportedDType(let n, let d): detail = "tensor '\(n)' has dtype \(d), which Inkwell does not load"
        case .missingTensor(let n): detail = "no tensor named '\(n)'"
        }
        return "\(path): \(detail)"
    }
}

/// Maps a file read-only into memory; unmapped when the last user (tensor or reader) goes away.
final class MappedFile {
    let base: UnsafeRawPointer
    let size: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw SafetensorsError(path: path, reason: .io(String(cString: strerror(errno))))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw SafetensorsError(path: path, reason: .io(String(cString: strerror(errno))))
        }
        size = Int(info.st_size)
        guard size >= 8 else { throw SafetensorsError(path: path, reason: .headerTooSmall) }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw SafetensorsError(path: path, reason: .io("mmap failed: \(String(cString: strerror(errno)))"))
        }
        base = UnsafeRawPointer(p)
    }
    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }
}

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
    /// The writer orders tensors by this rank, highest first (the reference's dtype enum order).
    static let alignmentRank: [String] = [
        "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
        "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64",
    ]

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

    /// Parses and validates a header (the JSON after the 8-byte length) for a file of `fileSize` bytes.
    static func parseHeader(_ header: UnsafeRawBufferPointer, fileSize: Int, path: String)
        throws -> (entries: [String: SafetensorsEntry], metadata: [String: String]) {
        func fail(_ r: SafetensorsError.Reason) -> SafetensorsError { SafetensorsError(path: path, reason: r) }
        guard let text = String(validating: header, as: UTF8.self) else { throw fail(.invalidHeader) }
        guard text.hasPrefix("{") else { throw fail(.invalidHeaderStart) }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(header), options: [])
        } catch {
            throw fail(.invalidHeaderDeserialization("not JSON"))
        }
        guard let object = json as? [String: Any] else { throw fail(.invalidHeaderDeserialization("not an object")) }

        var metadata: [String: String] = [:]
        var entries: [String: SafetensorsEntry] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw fail(.invalidHeaderDeserialization("__metadata__ is not an object"))
                }
                for (k, v) in m {
                    guard let s = v as? String else {
                        throw fail(.invalidHeaderDeserialization("metadata value of '\(k)' is not a string"))
                    }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any],
                  let dtype = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any],
                  let offsetsAny = info["data_offsets"] as? [Any], offsetsAny.count == 2
            else { throw fail(.invalidHeaderDeserialization("entry '\(name)' lacks dtype, shape or data_offsets")) }
            guard bitSizes[dtype] != nil else {
                throw fail(.invalidHeaderDeserialization("entry '\(name)' has unknown dtype \(dtype)"))
            }
            let shape = try shapeAny.map { try nonNegativeInt($0, name: name, path: path) }
            let offsets = try offsetsAny.map { try nonNegativeInt($0, name: name, path: path) }
            entries[name] = SafetensorsEntry(dtypeName: dtype, shape: shape, start: offsets[0], end: offsets[1])
        }

        // The reference's `Metadata::validate`: contiguous coverage of the buffer from 0, sizes exact.
        var end = 0
        for (name, e) in entries.sorted(by: { ($0.value.start, $0.value.end) < ($1.value.start, $1.value.end) }) {
            guard e.start == end, e.end >= e.start else { throw fail(.invalidOffset(name)) }
            end = e.end
            var elements = 1
            for d in e.shape {
                let (p, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail(.validationOverflow(name)) }
                elements = p
            }
            let (bits, overflow) = elements.multipliedReportingOverflow(by: bitSizes[e.dtypeName] ?? 8)
            guard !overflow else { throw fail(.validationOverflow(name)) }
            guard bits % 8 == 0 else { throw fail(.misalignedSlice(name)) }
            guard bits / 8 == e.end - e.start else { throw fail(.tensorInvalidInfo(name)) }
        }
        guard end + 8 + header.count == fileSize else { throw fail(.metadataIncompleteBuffer) }
        return (entries, metadata)
    }

    private static func nonNegativeInt(_ value: Any, name: String, path: String) throws -> Int {
        // JSONSerialization yields NSNumber; like serde's usize, accept integer literals only
        // (objCType 'c' is a JSON boolean, 'd' a number with a fraction or exponent).
        if let n = value as? NSNumber, "ilqsILQS".contains(String(cString: n.objCType)),
           n.int64Value >= 0 || String(cString: n.objCType) == "Q", n.uint64Value <= UInt64(Int.max) {
            return Int(n.uint64Value)
        }
        throw SafetensorsError(path: path, reason: .invalidHeaderDeserialization(
            "entry '\(name)' has a shape or offset that is not a non-negative integer"))
    }
}

/// A safetensors file opened for reading. Tensors are materialised on demand and, when aligned,
/// share the mapped pages instead of copying them.
public final class SafetensorsFile {
    public let path: String
    public let entries: [String: SafetensorsEntry]
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let n = file.base.loadUnaligned(as: UInt64.self).littleEndian
        guard n <= UInt64(Safetensors.maxHeaderSize) else {
            throw SafetensorsError(path: path, reason: .headerTooLarge(Int(clamping: n)))
        }
        let headerSize = Int(n)
        guard 8 + headerSize <= file.size else {
            throw SafetensorsError(path: path, reason: .invalidHeaderLength(headerSize))
        }
        let header = UnsafeRawBufferPointer(start: file.base + 8, count: headerSize)
        (entries, metadata) = try Safetensors.parseHeader(header, fileSize: file.size, path: path)
        dataStart = 8 + headerSize
    }

    public convenience init(url: URL) throws { try self.init(path: url.path) }

    /// Tensor names in file (offset) order.
    public var keys: [String] { entries.sorted { $0.value.start < $1.value.start }.map(\.key) }

    /// The named tensor on the CPU, in the file's dtype.
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = entries[name] else { throw SafetensorsError(path: path, reason: .missingTensor(name)) }
        guard let dtype = e.dtype else { throw SafetensorsError(path: path, reason: .unsupportedDType(name, e.dtypeName)) }
        let bytes = UnsafeRawBufferPointer(start: file.base + dataStart + e.start, count: e.end - e.start)
        if (dataStart + e.start) % dtype.size == 0 {
            return try Tensor.borrowing(bytes, shape: e.shape, dtype: dtype, owner: file)
        }
        return try Tensor(bytes: bytes, shape: e.shape, dtype: dtype)
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

    /// The bytes of a safetensors file, laid out as the reference writer does: header padded with
    /// spaces to 8 bytes, tensors ordered by dtype alignment (largest first) then name.
    public static func serialize(_ tensors: [String: Tensor], metadata: [String: String]? = nil) throws -> [UInt8] {
        let rank = Dictionary(uniqueKeysWithValues: alignmentRank.enumerated().map { ($1, $0) })
        let ordered = tensors.sorted { a, b in
            let ra = rank[name(of: a.value.dtype)] ?? 0, rb = rank[name(of: b.value.dtype)] ?? 0
            return ra != rb ? ra > rb : a.key.utf8.lexicographicallyPrecedes(b.key.utf8)
        }
        var json = "{"
        var fields: [String] = []
        if let metadata, !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for (name, t) in ordered {
            let size = t.byteCount
            let shape = t.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(name)):{\"dtype\":\"\(self.name(of: t.dtype))\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + size)]}")
            offset += size
        }
        json += fields.joined(separator: ",") + "}"
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }

        var out = [UInt8]()
        out.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for (_, t) in ordered { out.append(contentsOf: try t.bytes()) }
        return out
    }

    /// Writes a file atomically: a temporary file in the same folder, then a rename, so an
    /// interrupted write never leaves a truncated file under the final name.
    public static func save(_ tensors: [String: Tensor], metadata: [String: String]? = nil, to url: URL) throws {
        let bytes = try serialize(tensors, metadata: metadata)
        try writeAtomically(Data(bytes), to: url)
    }

    /// JSON string as serde_json writes it: escapes quotes, backslashes and control characters only.
    static func jsonString(_ s: String) -> String {
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
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// Writes `data` to a temporary sibling of `url`, then renames it over `url`.
public func writeAtomically(_ data: Data, to url: URL) throws {
    let dir = url.deletingLastPathComponent()
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let temp = dir.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
    do {
        try data.write(to: temp)
        guard rename(temp.path, url.path) == 0 else {
            throw SafetensorsError(path: url.path, reason: .io("rename failed: \(String(cString: strerror(errno)))"))
        }
    } catch {
        try? FileManager.default.removeItem(at: temp)
        throw error
    }
}
