// What one run folder says about itself: progress from log.csv, the best step from state/trainer.json
// (or the lowest val_loss in the log when the state is missing), checkpoints in lora/, sample images in
// samples/step_N/p<prompt>_s<seed>.png with their prompts read back from the PNG's A1111 text, and
// config.toml. Every file may be missing or half-written while the trainer runs: each read degrades
// to "absent", never to an error page.
import Foundation
import Imaging

struct RunReader: Sendable {
    let root: RunsRoot
    let logs: LogStore
    let prompts: PromptCache
    /// A log written within this many seconds counts as a run in progress.
    var liveWindow: TimeInterval = 120

    // MARK: Summary

    func summary(_ run: RunLocation, rows: [LogRow]? = nil) async -> RunSummary {
        let rows = await logRows(run, cached: rows)
        let config = self.config(run)
        let state = self.state(run)
        let best = self.best(run, rows: rows, state: state)
        let samples = sampleImages(run)
        let updated = modified(run.url.appendingPathComponent("log.csv")) ?? modified(run.url.appendingPathComponent("config.toml"))
        return RunSummary(id: run.id, name: run.name, group: run.group, pipeline: run.pipeline,
                          status: status(run, rows: rows, updated: updated),
                          lastStep: rows.last?.step ?? state?.step, maxSteps: config?["training", "max_steps"]?.number.map { Int($0) },
                          bestStep: best?.step, bestValLoss: best?.valLoss,
                          lastValLoss: rows.lastValidation?.valLoss ?? state?.lastValidationLoss,
                          latestSample: samples.max { ($0.step, -$0.prompt, -$0.seed) < ($1.step, -$1.prompt, -$1.seed) },
                          updated: updated?.timeIntervalSince1970)
    }

    func status(_ run: RunLocation, rows: [LogRow], updated: Date?) -> RunStatus {
        if FileManager.default.fileExists(atPath: run.url.appendingPathComponent("lora/final.safetensors").path) { return .finished }
        if rows.isEmpty { return .new }
        if let updated, Date().timeIntervalSince(updated) < liveWindow { return .training }
        return .stopped
    }

    func logRows(_ run: RunLocation, cached: [LogRow]? = nil) async -> [LogRow] {
        if let cached { return cached }
        return await logs.rows(run.url.appendingPathComponent("log.csv"))
    }

    // MARK: Detail

    func detail(_ run: RunLocation) async -> RunDetail {
        let rows = await logRows(run)
        let summary = await self.summary(run, rows: rows)
        let state = self.state(run)
        let configURL = run.url.appendingPathComponent("config.toml")
        let config = self.config(run)
        return RunDetail(summary: summary, config: config,
                         configPath: config == nil ? nil : root.relative(configURL),
                         checkpoints: checkpoints(run), samples: await samples(run, config: config),
                         best: best(run, rows: rows, state: state), state: state)
    }

    func log(_ run: RunLocation, since: Int) async -> LogResponse {
        let rows = await logRows(run)
        let state = self.state(run)
        let reachesSince = since < 0 || rows.contains { $0.step >= since } || rows.isEmpty
        let reset = !reachesSince
        let newRows = reset ? rows : rows.filter { $0.step > since }
        let updated = modified(run.url.appendingPathComponent("log.csv"))
        return LogResponse(id: run.id, since: since, reset: reset, rows: newRows, lastStep: rows.last?.step,
                           bestStep: best(run, rows: rows, state: state)?.step,
                           sampleSteps: sampleSteps(run), status: status(run, rows: rows, updated: updated))
    }

    // MARK: Files of the run

    func config(_ run: RunLocation) -> ConfigFile? {
        guard let data = FileManager.default.contents(atPath: run.url.appendingPathComponent("config.toml").path) else { return nil }
        return ConfigFile(parsing: String(decoding: data, as: UTF8.self))
    }

    /// state/trainer.json; `nan`/`inf` are written as strings there and read as absent.
    func state(_ run: RunLocation) -> TrainerStateInfo? {
        let url = run.url.appendingPathComponent("state/trainer.json")
        guard let data = FileManager.default.contents(atPath: url.path),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        func number(_ key: String) -> Double? {
            guard let n = object[key] as? NSNumber, !(n is Bool), n.doubleValue.isFinite else { return nil }
            return n.doubleValue
        }
        return TrainerStateInfo(step: number("step").map { Int($0) }, epoch: number("epoch").map { Int($0) },
                                bestStep: number("bestStep").map { Int($0) },
                                bestValidationLoss: number("bestValidationLoss"),
                                lastValidationLoss: number("lastValidationLoss"), seconds: number("seconds"),
                                nonFiniteTotal: number("nonFiniteTotal").map { Int($0) })
    }

    func best(_ run: RunLocation, rows: [LogRow], state: TrainerStateInfo?) -> BestCheckpoint? {
        let bestFile = run.url.appendingPathComponent("lora/best.safetensors")
        let path = FileManager.default.fileExists(atPath: bestFile.path) ? root.relative(bestFile) : nil
        if let step = state?.bestStep {
            // The log's value at that step is the one plotted; the state's is the same number unrounded.
            let logged = rows.last { $0.step == step }?.valLoss
            return BestCheckpoint(step: step, valLoss: state?.bestValidationLoss ?? logged, source: .state, path: path)
        }
        guard let row = rows.bestValidation else { return nil }
        return BestCheckpoint(step: row.step, valLoss: row.valLoss, source: .log, path: path)
    }

    func checkpoints(_ run: RunLocation) -> [Checkpoint] {
        let folder = run.url.appendingPathComponent("lora")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        var out: [Checkpoint] = []
        for name in names where name.hasSuffix(".safetensors") && !name.hasPrefix(".") {
            let url = folder.appendingPathComponent(name)
            guard let path = root.relative(url) else { continue }
            let bytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
            let base = String(name.dropLast(".safetensors".count))
            let kind: Checkpoint.Kind
            var step: Int?
            if base == "best" { kind = .best } else if base == "final" { kind = .final }
            else if let s = Self.number(after: "step_", in: base) { kind = .step; step = s }
            else { kind = .other }
            out.append(Checkpoint(name: name, path: path, kind: kind, step: step, bytes: bytes))
        }
        let order: [Checkpoint.Kind: Int] = [.best: 0, .final: 1, .step: 2, .other: 3]
        return out.sorted { (order[$0.kind] ?? 3, $0.step ?? 0, $0.name) < (order[$1.kind] ?? 3, $1.step ?? 0, $1.name) }
    }

    // MARK: Samples

    func sampleSteps(_ run: RunLocation) -> [Int] {
        let folder = run.url.appendingPathComponent("samples")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        return names.compactMap { Self.number(after: "step_", in: $0) }.sorted()
    }

    func sampleImages(_ run: RunLocation) -> [SampleImage] {
        var images: [SampleImage] = []
        for step in sampleSteps(run) {
            let folder = run.url.appendingPathComponent("samples").appendingPathComponent(String(format: "step_%06d", step))
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            for name in names {
                guard let (prompt, seed) = Self.sampleName(name), let path = root.relative(folder.appendingPathComponent(name)) else { continue }
                images.append(SampleImage(step: step, prompt: prompt, seed: seed, path: path))
            }
        }
        return images.sorted { ($0.step, $0.prompt, $0.seed) < ($1.step, $1.prompt, $1.seed) }
    }

    func samples(_ run: RunLocation, config: ConfigFile?) async -> SampleSet {
        let images = sampleImages(run)
        let configured = config?["samples", "prompts"]?.strings ?? []
        var infos: [PromptInfo] = []
        for index in Set(images.map(\.prompt)).sorted() {
            // The newest image of the prompt carries the text it was really generated from.
            let newest = images.last { $0.prompt == index }
            var parameters: String?
            if let newest, let url = try? root.file(newest.path) { parameters = await prompts.parameters(url) }
            let text = parameters.map(Self.promptLine) ?? (index < configured.count ? configured[index] : "prompt \(index)")
            infos.append(PromptInfo(index: index, text: text, parameters: parameters))
        }
        return SampleSet(steps: Array(Set(images.map(\.step))).sorted(), prompts: infos,
                         seeds: Set(images.map(\.seed)).sorted(), images: images)
    }

    // MARK: Helpers

    func modified(_ url: URL) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date
    }

    /// "step_000100" → 100 (any name that is the prefix and digits).
    static func number(after prefix: String, in name: String) -> Int? {
        guard name.hasPrefix(prefix) else { return nil }
        let digits = name.dropFirst(prefix.count)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        return Int(digits)
    }

    /// "p1_s42.png" → (1, 42); seeds may be negative.
    static func sampleName(_ name: String) -> (Int, Int)? {
        guard name.hasPrefix("p"), name.lowercased().hasSuffix(".png") else { return nil }
        let body = name.dropFirst().dropLast(4)
        let parts = body.split(separator: "_", maxSplits: 1)
        guard parts.count == 2, parts[1].hasPrefix("s"), let p = Int(parts[0]), p >= 0,
              let s = Int(parts[1].dropFirst()) else { return nil }
        return (p, s)
    }

    /// The prompt of an A1111 parameters text: everything before "Negative prompt:" or the settings line.
    static func promptLine(_ parameters: String) -> String {
        var lines: [Substring] = []
        for line in parameters.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("Negative prompt:") || line.hasPrefix("Steps: ") { break }
            lines.append(line)
        }
        return lines.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The `parameters` text of sample PNGs, read once per file version (path and modification time).
actor PromptCache {
    private var cache: [String: (Date, String?)] = [:]

    func parameters(_ url: URL) -> String? {
        let modified = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date ?? .distantPast
        if let (date, text) = cache[url.path], date == modified { return text }
        let text = (try? PNGText.read(url))?.dictionary["parameters"]
        if cache.count > 4096 { cache.removeAll() }
        cache[url.path] = (modified, text)
        return text
    }
}
