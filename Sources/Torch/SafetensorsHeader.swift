// A safetensors header read as the reference reads it: its JSON parsed rule for rule like serde_json's
// typed parse, then the tensors' offsets, shapes and dtypes validated like its `Metadata::validate`.

extension Safetensors {
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
