// `inkwell compare`: the base model and each run's LoRA on the same prompts and seeds, generated with
// one loaded pipeline (each LoRA attached in turn, at each scale, then taken off again) and laid out
// as one grid. Every cell is also saved as a PNG with its A1111 parameters and a key of everything
// that decides its pixels; a rerun reuses the cells whose key still matches, so adding a run
// generates only the new column, and the same inputs always give the same grid bytes.
import AtomicFile
import Crypto
import Foundation
import Imaging
import LoRA
import StableDiffusion
import Torch

public struct Comparison {
    public var model: ModelSource
    public var settings: CompareSettings
    /// The base model first, then the LoRA columns (see `CompareColumn.columns`).
    public var columns: [CompareColumn]
    public var outputDirectory: URL
    /// A1111's "Model hash" for the images' parameters (nil leaves it out).
    public var modelHash: String?
    /// Whatever else decides the pixels (device, dtype): part of every cell's key.
    public var environment = ""
    /// Regenerate every cell, even those whose key matches.
    public var force = false
    /// How each cell is shown in the grid (nil: as generated); `compare --stencil` shows stencils. The
    /// cells under images/ stay the generated PNGs, so toggling it regenerates nothing.
    public var gridCell: ((Image) throws -> Image)?

    public init(model: ModelSource, settings: CompareSettings, columns: [CompareColumn], outputDirectory: URL) {
        self.model = model
        self.settings = settings
        self.columns = columns
        self.outputDirectory = outputDirectory
    }

    /// The PNG text keyword that holds a cell's key.
    public static let keyKeyword = "inkwell-compare"

    public var rows: [CompareRow] { settings.rows }
    public var layout: CompareGridLayout {
        CompareGridLayout(cellWidth: settings.size, cellHeight: settings.size, columns: columns.count, rows: rows.count)
    }
    public var gridURL: URL { outputDirectory.appendingPathComponent("grid.png") }
    public var pageURL: URL { outputDirectory.appendingPathComponent("index.html") }
    public var manifestURL: URL { outputDirectory.appendingPathComponent("compare.json") }

    /// Where a cell's image is saved, relative to the output folder.
    public func cellPath(row: CompareRow, column: CompareColumn) -> String {
        "images/\(column.slug)/p\(row.promptIndex)_s\(row.seed).png"
    }

    /// The generation options of a cell (the same as `inkwell generate` with these flags).
    public func options(_ row: CompareRow, sampler: Sampler) -> GenerationOptions {
        var o = GenerationOptions(prompt: row.prompt)
        o.negativePrompt = settings.negativePrompt
        o.steps = settings.steps
        o.guidanceScale = settings.guidance
        o.width = settings.size
        o.height = settings.size
        o.seed = row.seed
        o.use(sampler)
        return o
    }

    /// Generates (or reuses) every cell, then writes grid.png, index.html and compare.json. `pipeline`
    /// is called only if some cell needs generating; `progress(done, total)`, called with 0 before the
    /// first image, after each denoising step (the count unchanged) and after each generated image, may return
    /// false to stop within a denoising step (throws `ComparisonStopped`; the cells saved so far are reused next
    /// time, the one being generated is dropped).
    public func run(pipeline load: () throws -> StableDiffusionPipeline,
                    progress: ((Int, Int) -> Bool)? = nil) throws -> CompareResult {
        try settings.validate()
        guard let sampler = settings.resolvedSampler else { throw ReportError("--sampler '\(settings.sampler)' is unknown") }
        guard columns.first?.isBase == true else { throw ReportError("compare: the first column must be the base model") }
        let rows = self.rows
        // What a killed compare's writes left half done.
        for folder in [outputDirectory] + Set(rows.flatMap { row in columns.map { column in
            outputDirectory.appendingPathComponent(cellPath(row: row, column: column)).deletingLastPathComponent() } }) {
            AtomicWrite.removeTemporaries(in: folder)
        }
        let identity = try Self.modelIdentity(model)
        var loraHashes: [String: String] = [:]
        for path in Set(columns.compactMap(\.lora)) {
            do {
                loraHashes[path] = try FileHash.loraHash(URL(fileURLWithPath: path))
            } catch {
                throw ReportError("\(path): cannot read the LoRA file (\(error.localizedDescription))")
            }
        }
        let keys = rows.map { row in columns.map { key(row: row, column: $0, loraHash: $0.lora.flatMap { loraHashes[$0] }, identity: identity) } }

        // Reuse what is up to date.
        var images: [[Image?]] = rows.map { _ in columns.map { _ in nil } }
        if !force {
            for (r, row) in rows.enumerated() {
                for (c, column) in columns.enumerated() {
                    images[r][c] = cached(outputDirectory.appendingPathComponent(cellPath(row: row, column: column)), key: keys[r][c])
                }
            }
        }
        let pending = images.reduce(0) { $0 + $1.filter { $0 == nil }.count }
        var done = 0
        if pending > 0 {
            let pipeline = try load()
            if let progress, !progress(0, pending) { throw ComparisonStopped(generated: 0) }
            // Columns that share a LoRA file are generated with one attachment, scale by scale.
            var groups: [(lora: String?, columns: [Int])] = []
            for (c, column) in columns.enumerated() {
                if let i = groups.firstIndex(where: { $0.lora == column.lora }) { groups[i].columns.append(c) } else { groups.append((column.lora, [c])) }
            }
            for group in groups where group.columns.contains(where: { c in rows.indices.contains { images[$0][c] == nil } }) {
                var stack: LoRAStack?
                if let lora = group.lora {
                    do {
                        stack = try pipeline.applyLoRAs([LoRAReference(url: URL(fileURLWithPath: lora))])
                    } catch {
                        throw ReportError("\(lora): cannot apply the LoRA to this model (\(error))")
                    }
                }
                defer { for network in stack?.networks ?? [] { try? network.removeFromModel() } }
                for c in group.columns {
                    let column = columns[c]
                    if let stack { try stack.setMultipliers([column.scale ?? 1]) }
                    for (r, row) in rows.enumerated() where images[r][c] == nil {
                        let image: Image
                        do {
                            image = try generate(row: row, column: column, pipeline: pipeline, sampler: sampler,
                                                 loraHash: column.lora.flatMap { loraHashes[$0] }, key: keys[r][c],
                                                 progress: progress.map { report in { _, _ in report(done, pending) } })
                        } catch is StopRequested {
                            throw ComparisonStopped(generated: done)
                        }
                        images[r][c] = image
                        done += 1
                        if let progress, !progress(done, pending) { throw ComparisonStopped(generated: done) }
                    }
                }
            }
        }
        let finished = try images.map { row in try row.map { image -> Image in
            guard let image else { throw ReportError("compare: a cell was neither generated nor reused") }
            return image
        } }
        let shown = try gridCell.map { transform in try finished.map { try $0.map(transform) } } ?? finished
        let grid = try ComparisonGrid.render(images: shown, columns: columns, rows: rows, layout: layout)
        try grid.writePNG(to: gridURL)
        let manifest = ComparisonManifest(comparison: self, rows: rows, keys: keys)
        try writeAtomically(Data(ComparisonPage.html(manifest).utf8), to: pageURL)
        try writeAtomically(try manifest.json(), to: manifestURL)
        return CompareResult(grid: grid, gridURL: gridURL, pageURL: pageURL, manifestURL: manifestURL,
                                generated: done, reused: rows.count * columns.count - done)
    }

    /// One cell: generated, saved with its parameters and key, returned.
    func generate(row: CompareRow, column: CompareColumn, pipeline: StableDiffusionPipeline, sampler: Sampler,
                  loraHash: String?, key: String, progress: ((Int, Int) -> Bool)? = nil) throws -> Image {
        let options = options(row, sampler: sampler)
        guard let image = try Image.batch(try pipeline(options, progress: progress), range: .unit).first else {
            throw ReportError("compare: the pipeline returned no image")
        }
        let url = outputDirectory.appendingPathComponent(cellPath(row: row, column: column))
        var job = TextToImageJob(options: options, sampler: sampler, outputDirectory: url.deletingLastPathComponent())
        job.modelName = model.displayName
        job.modelHash = modelHash
        if column.lora != nil {
            let alias = ([column.title] + (column.checkpoint.map { [$0] } ?? [])).joined(separator: "-")
            job.loras = [(alias, loraHash ?? "", column.scale ?? 1)]
        }
        let text = job.info(index: 0, defaultSampler: sampler).text
        try image.writePNG(to: url, text: [PNGTextChunk(keyword: "parameters", text: text),
                                           PNGTextChunk(keyword: Self.keyKeyword, text: key)])
        return image
    }

    /// The saved cell when its key matches and it decodes at the grid's size; nil otherwise.
    func cached(_ url: URL, key: String) -> Image? {
        guard FileManager.default.fileExists(atPath: url.path),
              let decoded = try? ImageDecoder.read(url),
              decoded.text.contains(where: { $0.keyword == Self.keyKeyword && $0.text == key }),
              decoded.image.width == settings.size, decoded.image.height == settings.size,
              let rgb = try? decoded.image.rgb() else { return nil }
        return rgb
    }

    struct CellKey: Codable {
        var model: String
        var environment: String
        var lora: String?
        var scale: Double?
        var prompt: String
        var negativePrompt: String
        var seed: UInt64
        var steps: Int
        var guidance: Double
        var size: Int
        var sampler: String
    }

    /// SHA-256 of everything that decides a cell's pixels. The LoRA enters by the hash of its tensors, so
    /// a retrained run invalidates its cells and a metadata-only change does not.
    func key(row: CompareRow, column: CompareColumn, loraHash: String?, identity: String) -> String {
        let cell = CellKey(model: identity, environment: environment, lora: loraHash, scale: column.lora == nil ? nil : column.scale ?? 1,
                           prompt: row.prompt, negativePrompt: settings.negativePrompt, seed: row.seed, steps: settings.steps,
                           guidance: settings.guidance, size: settings.size, sampler: settings.resolvedSampler?.rawValue ?? settings.sampler)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(cell)) ?? Data("\(cell)".utf8)
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// The model by path, file sizes and modification times (cheap: no hashing of gigabytes).
    static func modelIdentity(_ source: ModelSource) throws -> String {
        let fm = FileManager.default
        let root = source.url.standardizedFileURL
        var files: [String] = []
        switch source {
        case .singleFile: files = [""]
        case .diffusersFolder:
            guard let walker = fm.enumerator(at: root, includingPropertiesForKeys: nil) else {
                throw ReportError("\(root.path): cannot list the model folder")
            }
            for case let url as URL in walker {
                let relative = String(url.standardizedFileURL.path.dropFirst(root.path.count + 1))
                if !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { files.append(relative) }
            }
        }
        let parts = files.sorted().map { relative -> String in
            let path = relative.isEmpty ? root.path : root.appendingPathComponent(relative).path
            let attributes = try? fm.attributesOfItem(atPath: path)
            let size = (attributes?[.size] as? NSNumber)?.int64Value ?? 0
            let time = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(relative):\(size):\(time)"
        }
        return ([root.path] + parts).joined(separator: "|")
    }
}

public struct CompareResult {
    public var grid: Image
    public var gridURL: URL
    public var pageURL: URL
    public var manifestURL: URL
    /// Cells generated in this run, and cells reused from an earlier one.
    public var generated: Int
    public var reused: Int
}

/// The progress callback asked to stop; the cells generated so far are saved and reused by a rerun.
public struct ComparisonStopped: Error, CustomStringConvertible {
    public let generated: Int
    public var description: String { "comparison stopped after \(generated) generated images" }
}
