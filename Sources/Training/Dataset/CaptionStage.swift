// `inkwell caption`: caption files for the prepared images of a dataset.
//
// Where each image's caption comes from, first match wins:
//   1. a hand-written caption beside the raw image (`<raw stem>.txt`, the source's name with .txt);
//   2. a `captions_blip/<stem>.txt` that someone edited after we wrote it (blip_plus then follows it);
//   3. the captioner (BLIP), run once per image content and captioner identity, cached in captions.json.
// (1) and (2) are ignored with --overwrite-captions. Each requested variant then gets its file: blip the
// caption as is, blip_plus the caption enriched by `StyleHints` within the CLIP token limit. A caption file
// that was edited after we wrote it is never overwritten, even with --force; only --overwrite-captions
// replaces it. Vanilla needs no files: the trainer uses its prompt directly.
import AtomicFile
import Captioning
import Foundation
import Imaging
import RunFiles
import StableDiffusion

public struct CaptionOptions: Sendable {
    public var datasetDirectory: URL
    /// The variants to write files for; vanilla is accepted and needs nothing.
    public var variants: [CaptionVariant] = [.blip, .blipPlus]
    public var hints = StyleHints(StyleHints.defaultHints)
    /// CLIP's window: bos + 75 tokens + eos.
    public var tokenLimit = 77
    /// Recaption and rewrite everything we own (hand-written and edited captions are still kept).
    public var force = false
    /// Ignore hand-written and edited captions: every file comes from the captioner.
    public var overwriteCaptions = false
    /// Images per captioner call; nil uses the captioner's preference.
    public var batchSize: Int?

    public init(datasetDirectory: URL) { self.datasetDirectory = datasetDirectory }
}

public struct CaptionProgress: Sendable {
    /// Images captioned by the model so far, of `total` that need it.
    public var done: Int
    public var total: Int
}

public struct CaptionReport: Sendable {
    /// Stems whose file was (re)written, per variant.
    public var written: [CaptionVariant: [String]] = [:]
    public var upToDate: [CaptionVariant: [String]] = [:]
    /// Stems whose file was edited by hand and kept, per variant.
    public var keptEdited: [CaptionVariant: [String]] = [:]
    /// Stems captioned from a hand-written caption beside the raw image.
    public var handWritten: [String] = []
    /// Stems the captioner ran on in this run.
    public var captioned: [String] = []
    /// blip_plus captions that lost hints or words to the token limit.
    public var shortened: [String: StyleHints.Enriched] = [:]
    /// Caption files deleted because their image left the dataset.
    public var removed: [String] = []
    public var interrupted = false

    public var summary: [String] {
        var lines: [String] = []
        for variant in CaptionVariant.allCases where written[variant] != nil || upToDate[variant] != nil || keptEdited[variant] != nil {
            lines.append("\(variant.rawValue): \(written[variant]?.count ?? 0) written, \(upToDate[variant]?.count ?? 0) up to date, "
                         + "\(keptEdited[variant]?.count ?? 0) edited by hand and kept")
        }
        lines.append("\(captioned.count) captioned by the model, \(handWritten.count) from hand-written captions")
        for (stem, e) in shortened.sorted(by: { $0.key < $1.key }) {
            let what = e.truncated ? "caption cut to fit" : "hints dropped to fit: " + e.dropped.joined(separator: ", ")
            lines.append("blip_plus \(stem): \(what)")
        }
        if !removed.isEmpty { lines.append("removed captions of images no longer in the dataset: " + removed.joined(separator: ", ")) }
        if interrupted { lines.append("interrupted: rerun the same command to finish") }
        return lines
    }
}

public enum CaptionStageError: Error, CustomStringConvertible, Equatable {
    /// These images have no usable caption and no captioner was given.
    case captionerNeeded([String])

    public var description: String {
        switch self {
        case .captionerNeeded(let stems):
            let shown = stems.prefix(8).joined(separator: ", ") + (stems.count > 8 ? ", …" : "")
            return "\(stems.count) images have no hand-written caption and need a captioner: \(shown)"
        }
    }
}

public struct CaptionStage {
    public let options: CaptionOptions
    let captioner: (any ImageCaptioner)?
    let tokenCount: (String) -> Int

    /// `tokenCount` measures a caption as the text encoder will see it (bos and eos included).
    public init(_ options: CaptionOptions, captioner: (any ImageCaptioner)?, tokenCount: @escaping (String) -> Int) throws {
        guard options.tokenLimit >= 3 else { throw DatasetError("the token limit must be at least 3, got \(options.tokenLimit)") }
        if let size = options.batchSize, size < 1 { throw DatasetError("--batch-size must be 1 or more, got \(size)") }
        self.options = options
        self.captioner = captioner
        self.tokenCount = tokenCount
    }

    /// Counting with the CLIP tokenizer of the model to be trained.
    public init(_ options: CaptionOptions, captioner: (any ImageCaptioner)?, tokenizer: CLIPTokenizer) throws {
        var options = options
        options.tokenLimit = min(options.tokenLimit, tokenizer.maxLength)
        try self.init(options, captioner: captioner, tokenCount: { tokenizer.encode($0).count })
    }

    /// The caption for each image's base text, and where it came from.
    private struct Base { var text: String; var basis: String }

    public func run(progress: (CaptionProgress) -> Bool = { _ in true }) throws -> CaptionReport {
        let dataset = options.datasetDirectory
        guard let manifest = try DatasetManifest.load(datasetDirectory: dataset) else {
            throw DatasetError("\(dataset.path): no \(DatasetManifest.fileName); run `inkwell prepare` first")
        }
        var captions: CaptionManifest
        do { captions = try CaptionManifest.load(datasetDirectory: dataset) ?? CaptionManifest() } catch {
            if !options.force { throw error }
            captions = CaptionManifest()
        }
        var report = CaptionReport()
        let variants = options.variants.filter { $0.folderName != nil }
        guard !variants.isEmpty else { return report }
        for folder in variants.compactMap(\.folderName) { AtomicWrite.removeTemporaries(in: dataset.appendingPathComponent(folder)) }

        // Images that left the dataset: forget them, then delete the files we wrote for them.
        let stems = Set(manifest.images.map(\.stem))
        var stale: [URL] = []
        for (folder, records) in captions.files {
            for (stem, record) in records where !stems.contains(stem) {
                let url = dataset.appendingPathComponent(folder).appendingPathComponent("\(stem).txt")
                if ContentHash.sha256(of: url) == record.fileSHA256 { stale.append(url) }
                captions.files[folder]?[stem] = nil
                report.removed.append(stem)
            }
        }
        for stem in captions.generated.keys where !stems.contains(stem) { captions.generated[stem] = nil }
        report.removed = Array(Set(report.removed)).sorted()
        try captions.save(datasetDirectory: dataset)
        for url in stale { try? FileManager.default.removeItem(at: url) }

        // Each image's base caption, or a place in the captioner's queue.
        let input = URL(fileURLWithPath: manifest.input)
        var queue: [DatasetImage] = []
        for image in manifest.images {
            if let base = try existingBase(image, input: input, captions: captions) {
                if base.basis.hasPrefix("hand-written") { report.handWritten.append(image.stem) }
                try writeVariants(image, base: base, variants: variants, captions: &captions, report: &report)
            } else {
                queue.append(image)
            }
        }
        try captions.save(datasetDirectory: dataset)
        guard !queue.isEmpty else { return report }
        guard let captioner else { throw CaptionStageError.captionerNeeded(queue.map(\.stem)) }

        let batchSize = options.batchSize ?? max(1, captioner.preferredBatchSize)
        var done = 0
        for start in stride(from: 0, to: queue.count, by: batchSize) {
            guard progress(CaptionProgress(done: done, total: queue.count)) else {
                report.interrupted = true
                break
            }
            let batch = Array(queue[start..<min(start + batchSize, queue.count)])
            let images = try batch.map { entry -> Image in
                let url = dataset.appendingPathComponent(entry.output)
                do { return try Image.load(url) } catch {
                    throw DatasetError("\(url.path): cannot read the prepared image (\(error)); rerun `inkwell prepare`")
                }
            }
            let texts = try captioner.caption(images)
            guard texts.count == batch.count else {
                throw DatasetError("the captioner returned \(texts.count) captions for \(batch.count) images")
            }
            let cleaned = texts.map { $0.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
            for (entry, clean) in zip(batch, cleaned) {
                captions.generated[entry.stem] = GeneratedCaption(imageSHA256: entry.outputSHA256,
                                                                  captioner: captioner.identity, text: clean)
            }
            // The model's texts are recorded before any file of them is written: a file that a killed run wrote but
            // did not record is then known for the model's, not taken for one edited by hand (`existingBase`).
            try captions.save(datasetDirectory: dataset)
            for (entry, clean) in zip(batch, cleaned) {
                report.captioned.append(entry.stem)
                try writeVariants(entry, base: Base(text: clean, basis: "model \(captioner.identity)"),
                                  variants: variants, captions: &captions, report: &report)
            }
            try captions.save(datasetDirectory: dataset)  // a safe point after every batch
            done += batch.count
        }
        if !report.interrupted { _ = progress(CaptionProgress(done: done, total: queue.count)) }
        return report
    }

    /// The caption an image already has (hand-written, edited, or cached from the same captioner on the
    /// same pixels), or nil when the captioner has to run.
    private func existingBase(_ image: DatasetImage, input: URL, captions: CaptionManifest) throws -> Base? {
        if !options.overwriteCaptions {
            let sidecar = input.appendingPathComponent((image.source as NSString).deletingPathExtension + ".txt")
            if let text = try readCaption(sidecar), let sha = ContentHash.sha256(of: sidecar) {
                return Base(text: text, basis: "hand-written \(sha)")
            }
            let blipFolder = CaptionVariant.blip.folderName ?? "captions_blip"
            let blipFile = options.datasetDirectory.appendingPathComponent(blipFolder).appendingPathComponent("\(image.stem).txt")
            // Edited: neither the file last recorded nor the recorded model text's (written by a run killed before
            // it recorded the file).
            let generated = captions.generated[image.stem].map { ContentHash.sha256(Self.fileContent($0.text)) }
            if let sha = ContentHash.sha256(of: blipFile), sha != captions.files[blipFolder]?[image.stem]?.fileSHA256,
               sha != generated, let text = try readCaption(blipFile) {
                return Base(text: text, basis: "edited \(sha)")
            }
        }
        if !options.force, let cached = captions.generated[image.stem], cached.imageSHA256 == image.outputSHA256,
           captioner == nil || cached.captioner == captioner?.identity {
            return Base(text: cached.text, basis: "model \(cached.captioner)")
        }
        return nil
    }

    /// Writes (or keeps) every variant's file for one image.
    private func writeVariants(_ image: DatasetImage, base: Base, variants: [CaptionVariant],
                               captions: inout CaptionManifest, report: inout CaptionReport) throws {
        for variant in variants {
            guard let folder = variant.folderName else { continue }
            let url = options.datasetDirectory.appendingPathComponent(folder).appendingPathComponent("\(image.stem).txt")
            var text = base.text
            var settings = ""
            if variant == .blipPlus {
                let enriched = options.hints.enrich(base.text, tokenLimit: options.tokenLimit, tokenCount: tokenCount)
                text = enriched.text
                settings = "hints=\(options.hints.phrases.joined(separator: ", ")); limit=\(options.tokenLimit)"
                if enriched.truncated || !enriched.dropped.isEmpty { report.shortened[image.stem] = enriched }
            }
            let content = Self.fileContent(text)
            let record = CaptionFileRecord(imageSHA256: image.outputSHA256, basis: base.basis, settings: settings,
                                           fileSHA256: ContentHash.sha256(content))
            let previous = captions.files[folder]?[image.stem]
            let onDisk = ContentHash.sha256(of: url)
            // A file that already holds what would be written from the model's or a hand-written caption is this
            // stage's (a killed run wrote it, and had not recorded it yet), not an edit.
            let ours = onDisk == record.fileSHA256 && !base.basis.hasPrefix("edited")
            if let onDisk, onDisk != previous?.fileSHA256, !ours, !options.overwriteCaptions {
                report.keptEdited[variant, default: []].append(image.stem)
                continue
            }
            if !options.force, previous == record, onDisk == record.fileSHA256 {
                report.upToDate[variant, default: []].append(image.stem)
                continue
            }
            try writeAtomically(content, to: url)
            captions.files[folder, default: [:]][image.stem] = record
            report.written[variant, default: []].append(image.stem)
        }
    }

    /// A caption file's bytes for its text.
    static func fileContent(_ text: String) -> Data { Data((text + "\n").utf8) }

    /// A caption file's text with whitespace collapsed; nil when it does not exist or holds only whitespace.
    private func readCaption(_ url: URL) throws -> String? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw DatasetError.io(url.path, "read the caption", error) }
        let text = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return text.isEmpty ? nil : text
    }
}
