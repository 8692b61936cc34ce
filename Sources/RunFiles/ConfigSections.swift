// A run's config.toml for display: its sections and their key/value pairs, read with TOMLKit. Unlike
// `TrainingConfig.load` it accepts any TOML (a config written by an older or newer Inkwell still shows);
// values JSON cannot carry as they are (dates, inf, nan, inline tables) are shown as their TOML text.
import Foundation
import TOMLKit

/// A config value as JSON carries it to the dashboard's page.
public indirect enum ConfigValue: Codable, Equatable, Sendable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case array([ConfigValue])
    /// A value shown as its TOML text.
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

    init(_ value: TOMLValueConvertible) {
        switch value.type {
        case .string: self = .string(value.string ?? "")
        case .bool: self = .bool(value.bool ?? false)
        case .int: self = .number(Double(value.int ?? 0))
        case .double:
            // inf and nan stay text: JSON cannot carry them.
            let x = value.double ?? .nan
            self = x.isFinite ? .number(x) : .raw(x.isNaN ? "nan" : x > 0 ? "inf" : "-inf")
        case .array: self = .array(value.array.map { $0.map(ConfigValue.init) } ?? [])
        case .table, .date, .time, .dateTime: self = .raw(value.tomlValue.debugDescription)
        }
    }
}

public struct ConfigEntry: Codable, Equatable, Sendable {
    public var key: String
    public var value: ConfigValue
}

public struct ConfigSection: Codable, Equatable, Sendable {
    /// "" for the keys outside any section.
    public var name: String
    public var entries: [ConfigEntry]
}

public struct ConfigSections: Codable, Equatable, Sendable {
    public var sections: [ConfigSection]

    /// nil when the text is not TOML.
    public init?(toml text: String) {
        guard let table = try? TOMLTable(string: text) else { return nil }
        var top = ConfigSection(name: "", entries: [])
        var sections: [ConfigSection] = []
        for key in table.keys {
            guard let value = table[key] else { continue }
            if let section = value.table, !section.inline {
                sections.append(ConfigSection(name: key, entries: section.keys.compactMap { name in
                    section[name].map { ConfigEntry(key: name, value: ConfigValue($0)) }
                }))
            } else {
                top.entries.append(ConfigEntry(key: key, value: ConfigValue(value)))
            }
        }
        self.sections = (top.entries.isEmpty ? [] : [top]) + sections
    }

    /// The config.toml of a run; nil when it has none or it is not TOML.
    public init?(run: RunFolder) {
        guard let data = FileManager.default.contents(atPath: run.config.path) else { return nil }
        self.init(toml: String(decoding: data, as: UTF8.self))
    }

    public subscript(section: String, key: String) -> ConfigValue? {
        sections.first { $0.name == section }?.entries.first { $0.key == key }?.value
    }
}
