// A run's config.toml, read for display: `[section]` headers and `key = value` lines, values as
// TOML strings, numbers, booleans and (nested) arrays. The dashboard never depends on Training, so
// this is a reader of the subset the trainer writes, not a full TOML parser; a value it cannot read
// is shown as its raw text rather than refused.
import Foundation

/// A config value as JSON will carry it to the page.
public indirect enum ConfigValue: Codable, Equatable, Sendable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case array([ConfigValue])
    /// Text the reader did not understand (an inline table, a date), kept verbatim.
    case raw(String)

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s), .raw(let s): try c.encode(s)
        case .number(let x): try c.encode(x)
        case .bool(let b): try c.encode(b)
        case .array(let a): try c.encode(a)
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let x = try? c.decode(Double.self) { self = .number(x) }
        else if let a = try? c.decode([ConfigValue].self) { self = .array(a) }
        else { self = .string(try c.decode(String.self)) }
    }

    var number: Double? { if case .number(let x) = self { return x } else { return nil } }
    var strings: [String]? {
        guard case .array(let items) = self else { return nil }
        return items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    }
}

public struct ConfigEntry: Codable, Equatable, Sendable {
    public var key: String
    public var value: ConfigValue
}

public struct ConfigSection: Codable, Equatable, Sendable {
    /// "" for keys before the first header.
    public var name: String
    public var entries: [ConfigEntry]
}

public struct ConfigFile: Codable, Equatable, Sendable {
    public var sections: [ConfigSection]

    public init(sections: [ConfigSection]) { self.sections = sections }

    public subscript(section: String, key: String) -> ConfigValue? {
        sections.first { $0.name == section }?.entries.first { $0.key == key }?.value
    }

    public init(parsing text: String) {
        var sections: [ConfigSection] = [ConfigSection(name: "", entries: [])]
        var pending = ""  // a value whose brackets are still open (a multi-line array)
        var pendingKey = ""
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = Self.stripComment(String(rawLine)).trimmingCharacters(in: .whitespaces)
            if !pendingKey.isEmpty {
                pending += " " + line
                if Self.bracketsBalanced(pending) {
                    sections[sections.count - 1].entries.append(ConfigEntry(key: pendingKey, value: Self.value(pending)))
                    pendingKey = ""
                    pending = ""
                }
                continue
            }
            if line.isEmpty { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                let name = line.trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
                sections.append(ConfigSection(name: name, entries: []))
                continue
            }
            guard let eq = Self.firstUnquoted("=", in: line) else { continue }
            let key = Self.unquoteKey(String(line[..<eq]).trimmingCharacters(in: .whitespaces))
            let valueText = String(line[line.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
            if Self.bracketsBalanced(valueText) {
                sections[sections.count - 1].entries.append(ConfigEntry(key: key, value: Self.value(valueText)))
            } else {
                pendingKey = key
                pending = valueText
            }
        }
        self.sections = sections.filter { !($0.name.isEmpty && $0.entries.isEmpty) }
    }

    // MARK: Lexing helpers

    private static func unquoteKey(_ key: String) -> String {
        if key.count >= 2, let f = key.first, f == "\"" || f == "'", key.last == f { return String(key.dropFirst().dropLast()) }
        return key
    }

    /// Index of the first `target` outside a string.
    private static func firstUnquoted(_ target: Character, in text: String) -> String.Index? {
        var quote: Character?
        var escaped = false
        for i in text.indices {
            let c = text[i]
            if let q = quote {
                if escaped { escaped = false } else if c == "\\" && q == "\"" { escaped = true } else if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == target {
                return i
            }
        }
        return nil
    }

    private static func stripComment(_ line: String) -> String {
        guard let hash = firstUnquoted("#", in: line) else { return line }
        return String(line[..<hash])
    }

    private static func bracketsBalanced(_ text: String) -> Bool {
        var depth = 0
        var quote: Character?
        var escaped = false
        for c in text {
            if let q = quote {
                if escaped { escaped = false } else if c == "\\" && q == "\"" { escaped = true } else if c == q { quote = nil }
            } else if c == "\"" || c == "'" { quote = c }
            else if c == "[" || c == "{" { depth += 1 }
            else if c == "]" || c == "}" { depth -= 1 }
        }
        return depth <= 0
    }

    // MARK: Values

    static func value(_ text: String) -> ConfigValue {
        var scanner = ValueScanner(Array(text))
        guard let v = scanner.value(), scanner.atEnd else { return .raw(text) }
        return v
    }
}

/// A recursive-descent reader of one TOML value.
private struct ValueScanner {
    let chars: [Character]
    var i = 0
    init(_ chars: [Character]) { self.chars = chars }

    var atEnd: Bool {
        mutating get { skipSpace(); return i >= chars.count }
    }

    mutating func skipSpace() { while i < chars.count, chars[i].isWhitespace { i += 1 } }

    mutating func value() -> ConfigValue? {
        skipSpace()
        guard i < chars.count else { return nil }
        switch chars[i] {
        case "\"": return basicString().map(ConfigValue.string)
        case "'": return literalString().map(ConfigValue.string)
        case "[": return array()
        default: return bare()
        }
    }

    mutating func array() -> ConfigValue? {
        i += 1
        var items: [ConfigValue] = []
        while true {
            skipSpace()
            guard i < chars.count else { return nil }
            if chars[i] == "]" { i += 1; return .array(items) }
            guard let item = value() else { return nil }
            items.append(item)
            skipSpace()
            guard i < chars.count else { return nil }
            if chars[i] == "," { i += 1 } else if chars[i] != "]" { return nil }
        }
    }

    mutating func basicString() -> String? {
        i += 1
        var out = ""
        while i < chars.count {
            let c = chars[i]
            i += 1
            if c == "\"" { return out }
            guard c == "\\" else { out.append(c); continue }
            guard i < chars.count else { return nil }
            let e = chars[i]
            i += 1
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "\"": out.append("\"")
            case "\\": out.append("\\")
            case "u", "U":
                let n = e == "u" ? 4 : 8
                guard i + n <= chars.count, let code = UInt32(String(chars[i..<i + n]), radix: 16),
                      let scalar = Unicode.Scalar(code) else { return nil }
                out.unicodeScalars.append(scalar)
                i += n
            default: out.append(e)
            }
        }
        return nil
    }

    mutating func literalString() -> String? {
        i += 1
        guard let end = chars[i...].firstIndex(of: "'") else { return nil }
        defer { i = end + 1 }
        return String(chars[i..<end])
    }

    /// Numbers and booleans: read up to a delimiter.
    mutating func bare() -> ConfigValue? {
        let start = i
        while i < chars.count, chars[i] != ",", chars[i] != "]", !chars[i].isWhitespace { i += 1 }
        let word = String(chars[start..<i])
        if word == "true" { return .bool(true) }
        if word == "false" { return .bool(false) }
        // inf and nan stay text: JSON cannot carry them.
        if let x = Double(word.replacingOccurrences(of: "_", with: "")), x.isFinite { return .number(x) }
        return word.isEmpty ? nil : .raw(word)
    }
}
