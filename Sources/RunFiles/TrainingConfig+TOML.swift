// Reading and writing TrainingConfig as TOML: the file is laid over the defaults, `--set section.key=value`
// overrides apply on top, and the result is checked whole before it decodes strictly. Every problem (an
// unknown key, a name outside a closed set, a value out of range) is reported at once, each naming its key.
import Foundation
import StableDiffusion
import TOMLKit
import Torch

public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let source: String
    public let message: String
    public init(source: String, _ message: String) {
        self.source = source
        self.message = message
    }
    public var description: String { "\(source): \(message)" }

    /// The names of a closed set as a message lists them: "a, b or c".
    public static func listing(_ names: [String]) -> String {
        names.count < 2 ? names.joined() : names.dropLast().joined(separator: ", ") + " or " + (names.last ?? "")
    }
}

extension TrainingConfig {
    /// Sections and their keys, from the CodingKeys: what a config file may contain.
    static let schema: [String: Set<String>] = [
        "model": Set(Model.CodingKeys.allCases.map(\.rawValue)),
        "data": Set(Data.CodingKeys.allCases.map(\.rawValue)),
        "lora": Set(LoRA.CodingKeys.allCases.map(\.rawValue)),
        "optimizer": Set(Optimizer.CodingKeys.allCases.map(\.rawValue)),
        "schedule": Set(Schedule.CodingKeys.allCases.map(\.rawValue)),
        "training": Set(Training.CodingKeys.allCases.map(\.rawValue)),
        "validation": Set(Validation.CodingKeys.allCases.map(\.rawValue)),
        "samples": Set(Samples.CodingKeys.allCases.map(\.rawValue)),
        "output": Set(Output.CodingKeys.allCases.map(\.rawValue)),
    ]

    /// The keys whose values form a closed set, the names each lists in errors, and how a name users type
    /// becomes the one saved (samplers go by any of their A1111 / ComfyUI names).
    static let closedSets: [(section: String, key: String, names: [String], canonical: @Sendable (String) -> String?)] = [
        ("data", "captions", CaptionVariant.allCases.map(\.rawValue), { CaptionVariant(rawValue: $0)?.rawValue }),
        ("schedule", "name", LRSchedule.Kind.allCases.map(\.rawValue), { LRSchedule.Kind(rawValue: $0)?.rawValue }),
        ("training", "mixed_precision", MixedPrecision.allCases.map(\.rawValue), { MixedPrecision(rawValue: $0)?.rawValue }),
        ("samples", "sampler", Sampler.allCases.map(\.rawValue), { Sampler(name: $0)?.rawValue }),
    ]

    /// Parses TOML text, applies `overrides` ("section.key=value", the value in TOML syntax or a bare
    /// string), and decodes strictly. Absent keys keep their defaults.
    public static func parse(_ text: String, overrides: [String] = [], source: String = "config") throws -> TrainingConfig {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(source: source, "line \(error.source.begin.line): \(error.description)")
        }
        try checkKeys(table, source: source)
        // Absent keys take the defaults: the file is laid over the default config, key by key.
        let defaults: TOMLTable = try TOMLEncoder().encode(TrainingConfig())
        let merged: TOMLTable = try TOMLEncoder().encode(TrainingConfig())
        for section in table.keys {
            guard let from = table[section]?.table, let into = merged[section]?.table else { continue }
            for key in from.keys { into[key] = from[key] }
        }
        for override in overrides { try apply(override, to: merged) }
        // A name outside its set is reported with the rest, and decoding goes on with the default.
        var problems: [String] = []
        for (section, key, names, canonical) in closedSets {
            guard let value = merged[section]?.table?[key]?.string else { continue }
            if let name = canonical(value) {
                merged[section]?.table?[key] = name
            } else {
                problems.append("\(section).\(key) must be \(ConfigError.listing(names)), got '\(value)'")
                merged[section]?.table?[key] = defaults[section]?.table?[key]
            }
        }
        // JSON, the decoder's way in, has no NaN or infinity: name them here rather than fail to decode.
        for section in merged.keys.sorted() {
            guard let table = merged[section]?.table else { continue }
            for key in table.keys.sorted() {
                if let x = table[key]?.double, !x.isFinite {
                    problems.append("\(section).\(key) must be a finite number, got \(x)")
                    table[key] = defaults[section]?.table?[key]
                }
            }
        }
        // A value of the wrong type is reported and replaced by its default, so that decoding goes on and
        // the other keys' problems come in the same message.
        var reset: Set<[String]> = []
        while true {
            do {
                let json = merged.convert(to: .json)
                let config = try JSONDecoder().decode(TrainingConfig.self, from: Foundation.Data(json.utf8))
                problems += config.problems()
                if !problems.isEmpty { throw ConfigError(source: source, attributed(problems, to: overrides)) }
                return config
            } catch let error as DecodingError {
                problems.append(describe(error))
                let path = codingPath(error).prefix(2).map { $0.intValue.map(String.init) ?? $0.stringValue }
                guard path.count == 2, let fallback = defaults[path[0]]?.table?[path[1]],
                      let section = merged[path[0]]?.table, reset.insert(path).inserted else {
                    throw ConfigError(source: source, attributed(problems, to: overrides))
                }
                section[path[1]] = fallback
            }
        }
    }

    static func codingPath(_ error: DecodingError) -> [CodingKey] {
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): return c.codingPath
        case .keyNotFound(_, let c): return c.codingPath
        @unknown default: return []
        }
    }

    /// The problems, each naming the `--set` argument its key came from, so a bad override is not blamed
    /// on the file.
    static func attributed(_ problems: [String], to overrides: [String]) -> String {
        problems.map { problem in
            let text = problem.hasPrefix("'") ? problem.dropFirst() : Substring(problem)
            let from = overrides.last { override in
                let key = override.prefix { $0 != "=" }
                return text.hasPrefix(key) && !text.dropFirst(key.count).hasPrefix("_")
            }
            return from.map { "\(problem) (from --set \($0))" } ?? problem
        }.joined(separator: "; ")
    }

    public static func load(_ url: URL, overrides: [String] = []) throws -> TrainingConfig {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ConfigError(source: url.path, "cannot read the config file: \(error.localizedDescription)")
        }
        return try parse(text, overrides: overrides, source: url.path)
    }

    /// `section.key=value`: the value is read as TOML (numbers, booleans, arrays, quoted strings), or
    /// taken as a plain string when it is not valid TOML (`--set model.path=/models/sd15`).
    static func apply(_ override: String, to table: TOMLTable) throws {
        guard let eq = override.firstIndex(of: "=") else {
            throw ConfigError(source: "--set \(override)", "expected section.key=value")
        }
        let path = override[..<eq].split(separator: ".").map(String.init)
        let raw = String(override[override.index(after: eq)...])
        guard path.count == 2, let keys = schema[path[0]], keys.contains(path[1]) else {
            throw ConfigError(source: "--set \(override)", "unknown key '\(override[..<eq])'; sections: \(schema.keys.sorted().joined(separator: ", "))")
        }
        let value: TOMLValueConvertible
        if let parsed = try? TOMLTable(string: "v = \(raw)"), let v = parsed["v"] {
            value = v
        } else {
            value = raw
        }
        if table[path[0]] == nil { table[path[0]] = TOMLTable() }
        guard let section = table[path[0]]?.table else {
            throw ConfigError(source: "--set \(override)", "'\(path[0])' is not a section")
        }
        section[path[1]] = value
    }

    static func checkKeys(_ table: TOMLTable, source: String) throws {
        var problems: [String] = []
        for key in table.keys.sorted() {
            guard let allowed = schema[key] else {
                problems.append("unknown section [\(key)] (sections: \(schema.keys.sorted().joined(separator: ", ")))")
                continue
            }
            guard let section = table[key]?.table else { problems.append("'\(key)' must be a [\(key)] section"); continue }
            for sub in section.keys.sorted() where !allowed.contains(sub) {
                problems.append("unknown key '\(key).\(sub)' (known: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
        if !problems.isEmpty { throw ConfigError(source: source, problems.joined(separator: "; ")) }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context): return "'\(path(context))' must be \(typeName(type))"
        case .valueNotFound(let type, let context): return "'\(path(context))' must be \(typeName(type))"
        case .keyNotFound(let key, let context): return "missing key '\(path(context)).\(key.stringValue)'"
        case .dataCorrupted(let context): return "'\(path(context))': \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default: return "\(type)".hasPrefix("Array") ? "a list" : "\(type)"
        }
    }

    /// Checks value ranges; every problem is reported at once.
    public func validate(source: String = "config") throws {
        let p = problems()
        if !p.isEmpty { throw ConfigError(source: source, p.joined(separator: "; ")) }
    }

    /// The most optimizer steps a run may ask for: far beyond any LoRA run, and small enough that step
    /// arithmetic (schedules, epochs, checkpoint names) cannot overflow.
    public static let maxSteps = 100_000_000

    /// What is wrong with the values, one message per problem (names are enums: they cannot be wrong here).
    func problems() -> [String] {
        var p: [String] = []
        if model.path.isEmpty { p.append("model.path is required (a diffusers folder or .safetensors checkpoint)") }
        if data.dataset.isEmpty { p.append("data.dataset is required (a folder made by `inkwell prepare`)") }
        if data.resolution <= 0 || data.resolution % 8 != 0 { p.append("data.resolution must be a positive multiple of 8") }
        if !(1...128).contains(lora.rank) { p.append("lora.rank must be in 1...128, got \(lora.rank)") }
        if !(lora.alpha > 0) { p.append("lora.alpha must be positive") }
        if !(0..<1).contains(lora.dropout) { p.append("lora.dropout must be in [0, 1)") }
        if lora.targets.isEmpty { p.append("lora.targets must name at least one module") }
        if !(optimizer.learningRate > 0) { p.append("optimizer.learning_rate must be positive") }
        if training.seed < 0 || validation.seed < 0 || samples.seeds.contains(where: { $0 < 0 }) {
            p.append("seeds must be non-negative")
        }
        if training.maxSteps <= 0 || training.maxSteps > Self.maxSteps {
            p.append("training.max_steps must be in 1...\(Self.maxSteps), got \(training.maxSteps)")
        }
        if training.batchSize <= 0 { p.append("training.batch_size must be positive") }
        else if data.resolution > 0 {
            do {
                try MemoryNeed.check(MemoryNeed.training(resolution: data.resolution, batch: training.batchSize),
                                     settings: "training.batch_size = \(training.batchSize) at data.resolution = \(data.resolution)",
                                     remedy: "lower training.batch_size (training.gradient_accumulation gives the same effective batch)")
            } catch { p.append("\(error)") }
        }
        if training.gradientAccumulation <= 0 { p.append("training.gradient_accumulation must be positive") }
        let range = training.timestepRange
        if range.count != 2 || range[0] < 0 || range[0] >= range[1] || range[1] > 1000 {
            p.append("training.timestep_range must be [first, last) with 0 <= first < last <= 1000")
        }
        if validation.every < 0 || validation.timestepsPerImage <= 0 { p.append("validation.every must be >= 0 and timesteps_per_image > 0") }
        if samples.every < 0 { p.append("samples.every must be >= 0") }
        if samples.seeds.isEmpty && samples.every > 0 { p.append("samples.seeds must not be empty") }
        if samples.size <= 0 || samples.size % 8 != 0 { p.append("samples.size must be a positive multiple of 8") }
        else if samples.every > 0 {
            do {
                try MemoryNeed.check(MemoryNeed.generation(width: samples.size, height: samples.size, batch: 1),
                                     settings: "samples.size = \(samples.size)", remedy: "use a smaller samples.size")
            } catch { p.append("\(error)") }
        }
        if samples.clipScore && samples.clipModel == nil { p.append("samples.clip_score needs samples.clip_model (a CLIP folder)") }
        if output.keep < 0 { p.append("output.keep must be 0 (keep every checkpoint) or more, got \(output.keep)") }
        if output.name.isEmpty || output.name.contains("/") { p.append("output.name must be a plain folder name") }
        if output.loraName.contains("/") || output.loraName.hasPrefix(".") {
            p.append("output.lora_name must be a plain file name without extension (empty: output.name)")
        }
        return p
    }

    /// The resolved config as TOML, saved beside a run's outputs.
    public func toml() throws -> String {
        let table: TOMLTable = try TOMLEncoder().encode(self)
        return table.convert(to: .toml)
    }
}
