// JSON text as Python's `json.dumps` writes it (", " and ": " separators, ASCII-only with \u escapes,
// `indent`/`sort_keys` as asked), and Python's `str()` of numbers. Metadata that kohya and diffusers write
// with Python is written the same way here, so files from Inkwell read like files from them.
import Foundation

indirect enum PythonJSON: Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([PythonJSON])
    /// Keys in insertion order (Python dicts keep it), unless dumped with `sortKeys`.
    case object([(String, PythonJSON)])

    static func == (a: PythonJSON, b: PythonJSON) -> Bool { a.dumps() == b.dumps() }

    func dumps(indent: Int? = nil, sortKeys: Bool = false) -> String {
        var out = ""
        write(into: &out, indent: indent, level: 0, sortKeys: sortKeys)
        return out
    }

    private func write(into out: inout String, indent: Int?, level: Int, sortKeys: Bool) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += Self.repr(d, json: true)
        case .string(let s): out += Self.quoted(s)
        case .array(let items):
            guard !items.isEmpty else { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                out += i == 0 ? Self.opening(indent, level + 1) : Self.separator(indent, level + 1)
                item.write(into: &out, indent: indent, level: level + 1, sortKeys: sortKeys)
            }
            out += Self.closing(indent, level) + "]"
        case .object(let pairs):
            guard !pairs.isEmpty else { out += "{}"; return }
            let ordered = sortKeys ? pairs.sorted { $0.0 < $1.0 } : pairs
            out += "{"
            for (i, (key, value)) in ordered.enumerated() {
                out += i == 0 ? Self.opening(indent, level + 1) : Self.separator(indent, level + 1)
                out += Self.quoted(key) + ": "
                value.write(into: &out, indent: indent, level: level + 1, sortKeys: sortKeys)
            }
            out += Self.closing(indent, level) + "}"
        }
    }

    // Without indent: "[1, 2]"; with: newline and `indent` spaces per level, items separated by ",\n".
    private static func opening(_ indent: Int?, _ level: Int) -> String {
        indent.map { "\n" + String(repeating: " ", count: $0 * level) } ?? ""
    }
    private static func separator(_ indent: Int?, _ level: Int) -> String {
        indent.map { ",\n" + String(repeating: " ", count: $0 * level) } ?? ", "
    }
    private static func closing(_ indent: Int?, _ level: Int) -> String {
        indent.map { "\n" + String(repeating: " ", count: $0 * level) } ?? ""
    }

    /// `ensure_ascii=True`: everything outside printable ASCII as \uXXXX (UTF-16, surrogate pairs).
    static func quoted(_ s: String) -> String {
        var out = "\""
        for unit in s.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(UInt8(unit)))
            default:
                let hex = String(unit, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        return out + "\""
    }

    /// Python's `repr(float)` (what `str()` and `json.dumps` print): the shortest round-trip digits, which
    /// Swift's description also produces, with Python's spellings of the special values.
    static func repr(_ d: Double, json: Bool = false) -> String {
        if d.isNaN { return json ? "NaN" : "nan" }
        if d.isInfinite { return d > 0 ? (json ? "Infinity" : "inf") : (json ? "-Infinity" : "-inf") }
        return "\(d)"
    }
}

/// Python's `str(bool)`.
func pythonString(_ b: Bool) -> String { b ? "True" : "False" }
/// Python's `str(float)`.
func pythonString(_ d: Double) -> String { PythonJSON.repr(d) }
