// The safetensors format (huggingface/safetensors, safetensors/src/tensor.rs): reader with every
// validation rule of the reference implementation, memory-mapped and zero-copy; writer byte-compatible
// with `safetensors.torch.save_file`.
import AtomicFile
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

/// A file opened and mapped read-only, for the header and for tensors that are copied out. Pages are
/// read from disk only when touched. The descriptor stays open so that every later per-tensor mapping
/// is of the very file that was validated, even if another is renamed over its path meanwhile.
final class MappedFile: @unchecked Sendable {  // immutable after init
    let fd: Int32
    let base: UnsafeMutableRawPointer
    let size: Int

    init(path: String) throws {
        func ioError(_ what: String) -> SafetensorsError {
            SafetensorsError(path: path, reason: .io("\(what): \(String(cString: strerror(errno)))"))
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("cannot open") }
        var mapped = false
        defer { if !mapped { close(fd) } }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ioError("cannot stat") }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw SafetensorsError(path: path, reason: .io("not a regular file"))
        }
        let size = Int(info.st_size)
        // Checked before mapping: an empty file cannot be mapped, and this is the format's first rule.
        guard size >= 8 else { throw SafetensorsError(path: path, reason: .headerTooSmall) }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw ioError("mmap failed")
        }
        mapped = true
        (self.fd, self.base, self.size) = (fd, p, size)
    }

    deinit {
        munmap(base, size)
        close(fd)
    }

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Whether the file still has the size it had when opened. Pages past a shrunken end would
    /// fault (SIGBUS) when touched, so tensors are not read from a file truncated in place.
    var isIntact: Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && Int(info.st_size) == size
    }

    /// A private mapping of `count` bytes at `offset` for one tensor's storage, or nil where the kernel
    /// refuses one (the caller then copies). Writable copy-on-write: an in-place op on the tensor
    /// neither faults nor reaches the file or any other tensor read from it.
    func mapPrivately(offset: Int, count: Int) -> TensorMapping? {
        let start = offset - offset % Self.pageSize
        let length = offset - start + count
        guard let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, off_t(start)),
              p != MAP_FAILED else { return nil }
        return TensorMapping(base: p, length: length, data: p + (offset - start))
    }
}

/// The pages under one borrowed tensor; unmapped when libtorch frees the tensor's storage.
final class TensorMapping: @unchecked Sendable {  // owned by one tensor's storage
    let base: UnsafeMutableRawPointer
    let length: Int
    let data: UnsafeMutableRawPointer

    init(base: UnsafeMutableRawPointer, length: Int, data: UnsafeMutableRawPointer) {
        self.base = base
        self.length = length
        self.data = data
    }
    deinit { munmap(base, length) }
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

    /// Parses and validates a header (the bytes after the 8-byte length) followed by `dataSize` bytes
    /// of tensor data. Nothing here allocates by a size the header claims.
    static func parseHeader(_ header: UnsafeRawBufferPointer, dataSize: Int, path: String)
        throws -> (entries: [String: SafetensorsEntry], metadata: [String: String]) {
        func fail(_ r: SafetensorsError.Reason) -> SafetensorsError { SafetensorsError(path: path, reason: r) }
        var utf8 = UTF8()
        var iterator = header.makeIterator()
        decoding: while true {
            switch utf8.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: break decoding
            case .error: throw fail(.invalidHeader)
            }
        }
        guard header.first == UInt8(ascii: "{") else { throw fail(.invalidHeaderStart) }

        let (entries, metadata): ([String: SafetensorsEntry], [String: String])
        do {
            var parser = HeaderParser(header)
            (entries, metadata) = try parser.parseDocument()
        } catch let error as HeaderParser.Failure {
            throw fail(.invalidHeaderDeserialization(error.message))
        }

        // The reference's `Metadata::validate`: sorted by offsets, the tensors tile the buffer from 0
        // (no gap, no overlap: nothing in the file is unindexed) and each has exactly its size.
        var end = 0
        for name in fileOrder(entries) {
            guard let e = entries[name] else { continue }
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
        guard end == dataSize else { throw fail(.metadataIncompleteBuffer(tensorBytes: end, dataBytes: dataSize)) }
        return (entries, metadata)
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

/// A strict reader of the header's JSON, written for its one document shape so that it follows the
/// reference's typed parse (serde_json into `HashMetadata`) rule for rule: shapes and offsets are
/// unsigned integer literals only, metadata values strings only, unknown fields of a tensor entry are
/// skipped, nesting is capped at serde_json's recursion limit, and only whitespace may follow the
/// object. It also rejects duplicate keys, which the format's README forbids. The input is known to
/// be valid UTF-8.
struct HeaderParser {
    struct Failure: Error { let message: String }

    private let bytes: UnsafeRawBufferPointer
    private var pos = 0
    private var depth = 0
    /// Set on opening an object or array: its first member has not been read yet.
    private var atFirstMember = false
    static let maxDepth = 128

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// The whole header: tensor entries by name, and the `__metadata__` strings.
    mutating func parseDocument() throws -> ([String: SafetensorsEntry], [String: String]) {
        var entries: [String: SafetensorsEntry] = [:]
        var metadata: [String: String] = [:]
        var sawMetadata = false
        try openObject()
        while let key = try nextMember() {
            if key == "__metadata__" {
                guard !sawMetadata else { throw Failure(message: "duplicate key '__metadata__'") }
                sawMetadata = true
                if try skipNull() { continue }  // serde reads `null` as no metadata
                guard peek() == UInt8(ascii: "{") else {
                    throw Failure(message: "__metadata__ must be an object of strings, found \(kindOfValue())")
                }
                try openObject()
                while let k = try nextMember() {
                    guard peek() == UInt8(ascii: "\"") else {
                        throw Failure(message: "__metadata__ value of '\(k)' must be a string, found \(kindOfValue())")
                    }
                    guard metadata.updateValue(try parseString(), forKey: k) == nil else {
                        throw Failure(message: "__metadata__ has a duplicate key '\(k)'")
                    }
                }
            } else {
                guard entries[key] == nil else { throw Failure(message: "duplicate tensor name '\(key)'") }
                entries[key] = try parseEntry(key)
            }
        }
        skipWhitespace()
        guard pos == bytes.count else { throw syntax("unexpected characters after the JSON object") }
        return (entries, metadata)
    }

    private mutating func parseEntry(_ name: String) throws -> SafetensorsEntry {
        guard peek() == UInt8(ascii: "{") else {
            throw Failure(message: "tensor '\(name)' must be an object with dtype, shape and data_offsets, found \(kindOfValue())")
        }
        var dtype: String?, shape: [Int]?, offsets: [Int]?
        var seen: Set<String> = []
        try openObject()
        while let field = try nextMember() {
            if ["dtype", "shape", "data_offsets"].contains(field), !seen.insert(field).inserted {
                throw Failure(message: "tensor '\(name)' has a duplicate field '\(field)'")
            }
            switch field {
            case "dtype":
                guard peek() == UInt8(ascii: "\"") else {
                    throw Failure(message: "tensor '\(name)': dtype must be a string, found \(kindOfValue())")
                }
                let d = try parseString()
                guard Safetensors.bitSizes[d] != nil else {
                    throw Failure(message: "tensor '\(name)' has unknown dtype \"\(d)\"")
                }
                dtype = d
            case "shape":
                shape = try parseIndices("tensor '\(name)': shape")
            case "data_offsets":
                let o = try parseIndices("tensor '\(name)': data_offsets")
                guard o.count == 2 else {
                    throw Failure(message: "tensor '\(name)': data_offsets must hold 2 integers, not \(o.count)")
                }
                offsets = o
            default:
                try skipValue()  // serde ignores fields it does not know
            }
        }
        guard let dtype else { throw Failure(message: "tensor '\(name)' has no dtype") }
        guard let shape else { throw Failure(message: "tensor '\(name)' has no shape") }
        guard let offsets else { throw Failure(message: "tensor '\(name)' has no data_offsets") }
        return SafetensorsEntry(dtypeName: dtype, shape: shape, start: offsets[0], end: offsets[1])
    }

    /// An array of unsigned integer literals (serde's `usize`: no sign, fraction or exponent).
    private mutating func parseIndices(_ context: String) throws -> [Int] {
        guard peek() == UInt8(ascii: "[") else {
            throw Failure(message: "\(context) must be an array of non-negative integers, found \(kindOfValue())")
        }
        var values: [Int] = []
        try openArray()
        while try nextElement() {
            guard let c = peek(), c == UInt8(ascii: "-") || isDigit(c) else {
                throw Failure(message: "\(context) must hold non-negative integers, found \(kindOfValue())")
            }
            let start = pos
            try scanNumber()
            let token = String(decoding: bytes[start..<pos], as: UTF8.self)
            guard token.utf8.allSatisfy(isDigit) else {
                throw Failure(message: "\(context) must hold non-negative integers, found \(token.prefix(40))")
            }
            guard let value = Int(token) else {
                throw Failure(message: "\(context) value \(token.prefix(40)) is too large")
            }
            values.append(value)
        }
        return values
    }

    // MARK: JSON structure

    private mutating func openObject() throws { try open(UInt8(ascii: "{")) }
    private mutating func openArray() throws { try open(UInt8(ascii: "[")) }

    private mutating func open(_ bracket: UInt8) throws {
        skipWhitespace()
        guard peek() == bracket else { throw syntax("expected '\(Character(Unicode.Scalar(bracket)))'") }
        pos += 1
        depth += 1
        guard depth <= Self.maxDepth else { throw syntax("nesting deeper than \(Self.maxDepth) levels") }
        atFirstMember = true
    }

    /// The next key of the object being read (its ':' consumed), or nil at its closing brace.
    private mutating func nextMember() throws -> String? {
        guard try advance(closing: UInt8(ascii: "}")) else { return nil }
        skipWhitespace()
        guard peek() == UInt8(ascii: "\"") else { throw syntax("expected a string key") }
        let key = try parseString()
        skipWhitespace()
        guard peek() == UInt8(ascii: ":") else { throw syntax("expected ':'") }
        pos += 1
        skipWhitespace()
        return key
    }

    /// Whether the array being read has another element (positioned at it), false at its ']'.
    private mutating func nextElement() throws -> Bool {
        let more = try advance(closing: UInt8(ascii: "]"))
        skipWhitespace()
        return more
    }

    /// Past the ',' before the next member, or past the closing bracket (returns false).
    private mutating func advance(closing: UInt8) throws -> Bool {
        skipWhitespace()
        if atFirstMember {
            atFirstMember = false
            if peek() == closing { return close() }
            return true
        }
        switch peek() {
        case UInt8(ascii: ","):
            pos += 1
            skipWhitespace()
            if peek() == closing { throw syntax("trailing comma") }
            return true
        case closing:
            return close()
        default:
            throw syntax("expected ',' or '\(Character(Unicode.Scalar(closing)))'")
        }
    }

    private mutating func close() -> Bool {
        pos += 1
        depth -= 1
        return false
    }

    /// Any JSON value, checked and discarded (unknown fields of a tensor entry).
    private mutating func skipValue() throws {
        skipWhitespace()
        guard let c = peek() else { throw syntax("expected a value") }
        switch c {
        case UInt8(ascii: "{"):
            try openObject()
            while try nextMember() != nil { try skipValue() }
        case UInt8(ascii: "["):
            try openArray()
            while try nextElement() { try skipValue() }
        case UInt8(ascii: "\""):
            _ = try parseString()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try scanNumber()
        default: throw syntax("expected a value")
        }
    }

    private mutating func skipNull() throws -> Bool {
        guard peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    private mutating func literal(_ word: String) throws {
        for b in word.utf8 {
            guard peek() == b else { throw syntax("expected '\(word)'") }
            pos += 1
        }
    }

    /// JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    private mutating func scanNumber() throws {
        if peek() == UInt8(ascii: "-") { pos += 1 }
        guard let first = peek(), isDigit(first) else { throw syntax("invalid number") }
        pos += 1
        if first != UInt8(ascii: "0") { skipDigits() }
        if peek() == UInt8(ascii: ".") {
            pos += 1
            guard let d = peek(), isDigit(d) else { throw syntax("invalid number") }
            skipDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            pos += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { pos += 1 }
            guard let d = peek(), isDigit(d) else { throw syntax("invalid number") }
            skipDigits()
        }
        if let c = peek(), isDigit(c) { throw syntax("invalid number (leading zero)") }
    }

    private mutating func skipDigits() {
        while let c = peek(), isDigit(c) { pos += 1 }
    }

    // MARK: Strings

    private mutating func parseString() throws -> String {
        pos += 1  // the opening quote, checked by the caller
        var out: [UInt8] = []
        var run = pos
        while true {
            guard let c = peek() else { throw syntax("unterminated string") }
            switch c {
            case UInt8(ascii: "\""):
                out.append(contentsOf: bytes[run..<pos])
                pos += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                out.append(contentsOf: bytes[run..<pos])
                pos += 1
                try parseEscape(into: &out)
                run = pos
            case 0..<0x20:
                throw syntax("control character in a string")
            default:
                pos += 1
            }
        }
    }

    private mutating func parseEscape(into out: inout [UInt8]) throws {
        guard let c = peek() else { throw syntax("unterminated string") }
        pos += 1
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(c)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var value = try hex4()
            if (0xD800..<0xDC00).contains(value) {
                // A high surrogate must be followed by an escaped low one, as serde_json requires.
                guard peek() == UInt8(ascii: "\\"), pos + 1 < bytes.count, bytes[pos + 1] == UInt8(ascii: "u") else {
                    throw syntax("unpaired surrogate in \\u escape")
                }
                pos += 2
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw syntax("unpaired surrogate in \\u escape") }
                value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(value) {
                throw syntax("unpaired surrogate in \\u escape")
            }
            guard let scalar = Unicode.Scalar(value) else { throw syntax("invalid \\u escape") }
            UTF8.encode(scalar) { out.append($0) }
        default:
            throw syntax("invalid escape")
        }
    }

    private mutating func hex4() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let c = peek(), let digit = Character(Unicode.Scalar(c)).hexDigitValue else {
                throw syntax("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            pos += 1
        }
        return value
    }

    // MARK: Bytes

    private func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }

    private mutating func skipWhitespace() {
        while let c = peek(), c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { pos += 1 }
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    /// What the value at the current position is, for messages.
    private func kindOfValue() -> String {
        guard let c = peek() else { return "the end of the header" }
        switch c {
        case UInt8(ascii: "{"): return "an object"
        case UInt8(ascii: "["): return "an array"
        case UInt8(ascii: "\""): return "a string"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return "a boolean"
        case UInt8(ascii: "n"): return "null"
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return "a number"
        default: return "invalid JSON at byte \(pos)"
        }
    }

    private func syntax(_ message: String) -> Failure {
        Failure(message: "\(message) at byte \(pos) of the JSON")
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
