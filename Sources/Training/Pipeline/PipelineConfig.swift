// pipeline.toml: a [pipeline] section (which images, which caption variants, how to prepare them)
// followed by the training sections every variant's run shares (see TrainingConfig).
import Foundation
import Captioning
import RunFiles
import TOMLKit

public struct PipelineConfig: Equatable, Sendable {
    /// Names the pipeline's folder under the training `output.dir` (runs/<name>/).
    public var name = "tattoo"
    /// Raw images (and optional hand-written `<stem>.txt` captions).
    public var input = "data/raw"
    /// Where prepared datasets live (data/processed/<name>/).
    public var datasets = "data/processed"
    public var resolution = 512
    public var fit = Fit.crop
    public var clean = false
    public var buckets = false
    public var validationFraction = 0.05
    public var variants: [CaptionVariant] = [.vanilla, .blip, .blipPlus]
    /// A transformers BLIP captioning folder (needed by the blip variants unless every image has a hand-written caption).
    public var blip: String?
    public var blipPrefix: String?
    public var blipBeams = 3
    public var hints = StyleHints.defaultHints
    /// LoRA strengths shown side by side in the comparison grid.
    public var compareScales = [1.0]
    /// The training config every run starts from (data.dataset, data.captions and output.name are set per run).
    public var training = TrainingConfig()

    static let keys: Set<String> = [
        "name", "input", "datasets", "resolution", "fit", "clean", "buckets", "validation_fraction", "variants", "blip",
        "blip_prefix", "blip_beams", "hints", "compare_scales",
    ]

    public init() {}

    public static func load(_ url: URL, overrides: [String] = []) throws -> PipelineConfig {
        let source = url.path
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ConfigError(source: source, "cannot read the pipeline config: \(error.localizedDescription)")
        }
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch let error as TOMLParseError {
            throw ConfigError(source: source, "line \(error.source.begin.line): \(error.description)")
        }
        var config = PipelineConfig()
        if let section = table["pipeline"]?.table {
            for key in section.keys where !keys.contains(key) {
                throw ConfigError(source: source, "unknown key 'pipeline.\(key)' (known: \(keys.sorted().joined(separator: ", ")))")
            }
            func string(_ k: String) throws -> String? {
                guard let v = section[k] else { return nil }
                guard let s = v.string else { throw ConfigError(source: source, "'pipeline.\(k)' must be a string") }
                return s
            }
            func int(_ k: String) throws -> Int? {
                guard let v = section[k] else { return nil }
                guard let i = v.int else { throw ConfigError(source: source, "'pipeline.\(k)' must be an integer") }
                return i
            }
            func bool(_ k: String) throws -> Bool? {
                guard let v = section[k] else { return nil }
                guard let b = v.bool else { throw ConfigError(source: source, "'pipeline.\(k)' must be true or false") }
                return b
            }
            func number(_ k: String) throws -> Double? {
                guard let v = section[k] else { return nil }
                if let d = v.double { return d }
                if let i = v.int { return Double(i) }
                throw ConfigError(source: source, "'pipeline.\(k)' must be a number")
            }
            /// A name of a closed set; the error lists the names.
            func named<T: RawRepresentable & CaseIterable>(_ k: String, _ text: String) throws -> T where T.RawValue == String {
                guard let value = T(rawValue: text) else {
                    throw ConfigError(source: source, "pipeline.\(k) must be "
                        + ConfigError.listing(T.allCases.map(\.rawValue)) + ", got '\(text)'")
                }
                return value
            }
            func list<T>(_ k: String, _ element: (TOMLValueConvertible) -> T?) throws -> [T]? {
                guard let v = section[k] else { return nil }
                guard let array = v.array else { throw ConfigError(source: source, "'pipeline.\(k)' must be a list") }
                return try array.map { item in
                    guard let e = element(item) else { throw ConfigError(source: source, "'pipeline.\(k)' has an entry of the wrong type") }
                    return e
                }
            }
            config.name = try string("name") ?? config.name
            config.input = try string("input") ?? config.input
            config.datasets = try string("datasets") ?? config.datasets
            config.resolution = try int("resolution") ?? config.resolution
            config.fit = try string("fit").map { try named("fit", $0) } ?? config.fit
            config.clean = try bool("clean") ?? config.clean
            config.buckets = try bool("buckets") ?? config.buckets
            config.validationFraction = try number("validation_fraction") ?? config.validationFraction
            config.variants = try list("variants") { $0.string }?.map { try named("variants", $0) } ?? config.variants
            config.blip = try string("blip")
            config.blipPrefix = try string("blip_prefix")
            config.blipBeams = try int("blip_beams") ?? config.blipBeams
            config.hints = try string("hints") ?? config.hints
            config.compareScales = try list("compare_scales") { $0.double ?? $0.int.map(Double.init) } ?? config.compareScales
            table.remove(at: "pipeline")
        }
        // The pipeline's dataset and per-variant names are filled in per run; placeholders satisfy validation.
        let training = table
        if training["data"] == nil { training["data"] = TOMLTable() }
        if let data = training["data"]?.table, data["dataset"] == nil { data["dataset"] = "(set per run)" }
        config.training = try TrainingConfig.parse(training.convert(to: .toml), overrides: overrides, source: source)
        try config.validate(source: source)
        return config
    }

    func validate(source: String) throws {
        var p: [String] = []
        if name.isEmpty || name.contains("/") { p.append("pipeline.name must be a plain folder name") }
        if resolution <= 0 || resolution % 64 != 0 { p.append("pipeline.resolution must be a positive multiple of 64") }
        if variants.isEmpty { p.append("pipeline.variants must list vanilla, blip and/or blip_plus") }
        if Set(variants).count != variants.count { p.append("pipeline.variants lists a variant twice") }
        if compareScales.isEmpty { p.append("pipeline.compare_scales must not be empty") }
        if !p.isEmpty { throw ConfigError(source: source, p.joined(separator: "; ")) }
    }

    /// The run config of one variant: the shared training config pointed at the dataset and run folder.
    public func runConfig(variant: CaptionVariant) -> TrainingConfig {
        var c = training
        c.data.dataset = URL(fileURLWithPath: datasets).appendingPathComponent(name).path
        c.data.captions = variant
        c.data.resolution = resolution
        c.output.dir = URL(fileURLWithPath: training.output.dir).appendingPathComponent(name).path
        c.output.name = variant.rawValue
        c.output.loraName = "\(name)-\(variant.rawValue)"
        return c
    }

    /// runs/<name>/: the pipeline's folder (its runs, summary, comparison and plots).
    public var folder: URL { URL(fileURLWithPath: training.output.dir).appendingPathComponent(name) }
}
