// `inkwell prepare`: a folder of raw images in, a training dataset out (images/ + manifest.json).
//
// The run, in the order that keeps the manifest true at every moment (principles 6 and 7):
//  1. hash every candidate file (SHA-256 of its bytes); empty, unreadable and oversized files are skipped;
//  2. exact duplicates (same SHA-256) are skipped, keeping the copy the manifest already has, else the
//     first by name, so that adding a copy never replaces a prepared image;
//  3. entries whose source, settings and output are unchanged are kept as they are (unless --force);
//  4. the manifest is saved with only those, then outputs of sources that are gone are deleted;
//  5. every other image is decoded, framed and written (atomically), and added to the manifest, which is
//     saved every couple of seconds and at the end. A failing image is reported and skipped; the run goes
//     on. Stopping (the progress callback returns false, as on Ctrl-C) saves the manifest and returns.
//  6. the validation split and the near-duplicate report are recomputed over the result.
// A hard kill at any point leaves at worst an output the manifest does not list (or lists with an
// older hash): the next run redoes exactly those.
import AtomicFile
import Foundation
import Imaging
import Torch

public struct PrepareOptions: Sendable {
    public var input: URL
    /// `<output>/<name>`: holds images/ and manifest.json.
    public var datasetDirectory: URL
    public var settings = PrepareSettings()
    public var validation = ValidationSplit.standard
    /// Redo every image even when it is up to date.
    public var force = false
    /// Images claiming more pixels are refused before decoding (decompression bombs, giant scans).
    public var maxPixels = 64_000_000
    /// Files larger than this are refused before reading.
    public var maxFileBytes = 256 << 20
    /// Hamming distance (of 63 bits) at or below which two images are reported as near duplicates.
    public var nearDuplicateThreshold = PerceptualHash.defaultThreshold

    public init(input: URL, datasetDirectory: URL) {
        self.input = input
        self.datasetDirectory = datasetDirectory
    }
}

public struct PrepareProgress: Sendable {
    public enum Phase: String, Sendable { case hashing, processing }
    public var phase: Phase
    /// Items finished in this phase.
    public var done: Int
    public var total: Int
    /// The file being worked on (relative to the input folder); empty when the phase is finished.
    public var file: String
}

public struct PrepareReport: Sendable {
    public var manifest: DatasetManifest
    /// Sources (re)made by this run.
    public var processed: [String] = []
    /// Sources whose output was already up to date.
    public var upToDate: [String] = []
    /// Sources whose output was deleted: gone, now a duplicate, or now failing.
    public var removed: [String] = []
    /// Files that produced no output, with the reason.
    public var skipped: [SkippedFile] = []
    /// Whether the run stopped early; the manifest lists what was finished.
    public var interrupted = false

    public var nearDuplicates: [NearDuplicate] { manifest.nearDuplicates }

    /// A few lines that say what happened, for the command line.
    public var summary: [String] {
        let s = manifest.settings
        var lines = ["\(interrupted ? "interrupted: " : "")\(manifest.images.count) images in \(manifest.name): "
                     + "\(processed.count) prepared, \(upToDate.count) up to date, \(skipped.count) skipped, \(removed.count) removed "
                     + "(\(s.resolution) px, \(s.fit.rawValue)\(s.buckets ? ", buckets" : "")\(s.clean ? ", clean" : ""), \(s.filter))"]
        if !removed.isEmpty { lines.append("removed outputs of: " + removed.joined(separator: ", ")) }
        for file in skipped { lines.append("skipped \(file)") }
        for pair in nearDuplicates {
            lines.append("near duplicate (kept, check it): \(pair.first) ~ \(pair.second) (distance \(pair.distance))")
        }
        let validation = manifest.images(in: .validation).count
        lines.append("split: \(manifest.images.count - validation) train, \(validation) validation "
                     + "(fraction \(manifest.validation.fraction), seed \(manifest.validation.seed))")
        if s.buckets {
            let counts = manifest.imagesByBucket.sorted { ($0.key.width, $0.key.height) < ($1.key.width, $1.key.height) }
            lines.append("buckets: " + counts.map { "\($0.key) ×\($0.value.count)" }.joined(separator: ", "))
        }
        if interrupted { lines.append("rerun the same command to finish; finished images are not redone") }
        return lines
    }
}

public struct Preparer {
    public let options: PrepareOptions
    let preparation: ImagePreparation

    public init(_ options: PrepareOptions) throws {
        self.options = options
        preparation = try ImagePreparation(settings: options.settings)
        guard options.nearDuplicateThreshold >= 0 else {
            throw DatasetError("the near-duplicate threshold must be 0 or more, got \(options.nearDuplicateThreshold)")
        }
    }

    /// Runs the stage. `progress` is called before each file and once at the end of each phase; returning
    /// false stops the run at that point, with the manifest saved.
    public func run(progress: (PrepareProgress) -> Bool = { _ in true }) throws -> PrepareReport {
        let dataset = options.datasetDirectory
        let imagesFolder = dataset.appendingPathComponent(DatasetManifest.imagesFolder)
        do {
            try FileManager.default.createDirectory(at: imagesFolder, withIntermediateDirectories: true)
        } catch {
            throw DatasetError.io(imagesFolder.path, "create the folder", error)
        }
        AtomicWrite.removeTemporaries(in: dataset)
        AtomicWrite.removeTemporaries(in: imagesFolder)

        // A damaged manifest stops the run, unless --force says to start over.
        let previous: DatasetManifest?
        do { previous = try DatasetManifest.load(datasetDirectory: dataset) } catch {
            if !options.force { throw error }
            previous = nil
        }
        var known: [String: DatasetImage] = [:]
        for entry in previous?.images ?? [] where known[entry.source] == nil { known[entry.source] = entry }
        let previousSplit = previous?.validation == options.validation
            ? Dictionary(known.values.map { ($0.source, $0.split) }, uniquingKeysWith: { a, _ in a }) : [:]

        var manifest = DatasetManifest(name: dataset.lastPathComponent, input: options.input.standardizedFileURL.path,
                                       settings: options.settings, validation: options.validation)
        var report = PrepareReport(manifest: manifest)

        // 1. Hash.
        let sources = try SourceFiles.scan(options.input, excluding: dataset)
        var hashes: [String: String] = [:]
        for (index, source) in sources.enumerated() {
            guard progress(PrepareProgress(phase: .hashing, done: index, total: sources.count, file: source)) else {
                report.interrupted = true
                report.manifest = previous ?? manifest
                return report
            }
            switch hash(source) {
            case .success(let sha): hashes[source] = sha
            case .failure(let reason): report.skipped.append(SkippedFile(source: source, reason: reason.text))
            }
        }
        _ = progress(PrepareProgress(phase: .hashing, done: sources.count, total: sources.count, file: ""))

        // 2. Exact duplicates.
        let groups = Dictionary(grouping: hashes.keys, by: { hashes[$0] ?? "" })
        var kept: [String] = []
        for source in sources {
            guard let sha = hashes[source], let group = groups[sha]?.sorted(), let first = group.first else { continue }
            let keeper = group.first { known[$0]?.sourceSHA256 == sha } ?? first
            if source == keeper {
                kept.append(source)
            } else {
                report.skipped.append(SkippedFile(source: source, reason: "exact duplicate of \(keeper) (same SHA-256)"))
            }
        }

        // 3. Up to date?
        var todo: [String] = []
        for source in kept {
            if !options.force, let entry = known[source], entry.sourceSHA256 == hashes[source], entry.settings == options.settings,
               ContentHash.sha256(of: dataset.appendingPathComponent(entry.output)) == entry.outputSHA256 {
                manifest.images.append(entry)
                report.upToDate.append(source)
            } else {
                todo.append(source)
            }
        }

        // 4. Save what is certain, then delete the outputs of sources that are gone.
        try save(&manifest, previousSplit: previousSplit)
        let keptSet = Set(kept)
        for entry in known.values.sorted(by: { $0.source < $1.source }) where !keptSet.contains(entry.source) {
            try? FileManager.default.removeItem(at: dataset.appendingPathComponent(entry.output))
            report.removed.append(entry.source)
        }

        // 5. Prepare the rest. Sources keep the output name they had.
        var taken = Set(manifest.images.map(\.stem))
        var stems: [String: String] = [:]
        for source in todo {
            let stem = known[source].map(\.stem).flatMap { taken.contains($0) ? nil : $0 }
                ?? SourceFiles.uniqueStem(for: source, taken: taken)
            taken.insert(stem)
            stems[source] = stem
        }
        var lastSave = Date()
        for (index, source) in todo.enumerated() {
            guard progress(PrepareProgress(phase: .processing, done: index, total: todo.count, file: source)) else {
                report.interrupted = true
                break
            }
            let stem = stems[source] ?? SourceFiles.stem(for: source)
            do {
                let entry = try prepare(source, stem: stem)
                manifest.images.append(entry)
                report.processed.append(source)
            } catch let error where error is DatasetError || error is AtomicWriteError {
                try save(&manifest, previousSplit: previousSplit)
                throw error  // cannot write the dataset (disk full, permissions): stop
            } catch {
                report.skipped.append(SkippedFile(source: source, reason: Self.reason(error, file: source)))
                if let old = known[source] {
                    try? FileManager.default.removeItem(at: dataset.appendingPathComponent(old.output))
                    report.removed.append(source)
                }
            }
            if Date().timeIntervalSince(lastSave) >= 2 {
                try save(&manifest, previousSplit: previousSplit)
                lastSave = Date()
            }
        }
        if !report.interrupted {
            _ = progress(PrepareProgress(phase: .processing, done: todo.count, total: todo.count, file: ""))
        }

        // 6. Split, duplicates report, final save; then outputs nothing refers to are removed.
        report.skipped.sort { $0.source < $1.source }
        manifest.skipped = report.skipped
        try save(&manifest, previousSplit: previousSplit)
        if !report.interrupted { removeOrphans(in: imagesFolder, manifest: manifest) }
        report.manifest = manifest
        return report
    }

    // MARK: Steps

    /// The SHA-256 of a source, or why it cannot be used.
    private func hash(_ source: String) -> Result<String, SkipReason> {
        let url = options.input.appendingPathComponent(source)
        // By type first: a named pipe would block the read (and its size says "empty"), a link loop has no size.
        if let problem = RegularFile.problem(atPath: url.path) { return .failure(SkipReason(text: problem)) }
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue
        guard let size else { return .failure(SkipReason(text: "cannot read the file's size")) }
        if size == 0 { return .failure(SkipReason(text: "empty file (0 bytes)")) }
        if size > options.maxFileBytes {
            return .failure(SkipReason(text: String(format: "file is %.1f MiB, over the limit of %.0f MiB",
                                                    Double(size) / 1_048_576, Double(options.maxFileBytes) / 1_048_576)))
        }
        guard let sha = ContentHash.sha256(of: url) else { return .failure(SkipReason(text: "cannot read the file")) }
        return .success(sha)
    }

    /// Decodes, frames and writes one image; returns its manifest entry.
    private func prepare(_ source: String, stem: String) throws -> DatasetImage {
        let url = options.input.appendingPathComponent(source)
        let bytes: [UInt8]
        guard let read = Self.contents(of: url) else { throw SkipReason(text: "cannot read the file") }
        bytes = read
        // The bytes hashed in step 1 may have changed since: hash what is actually decoded.
        let actualSHA = ContentHash.sha256(bytes)
        // The plan comes from the header; the pixels then arrive in bands, each flattened and fed to the resize
        // and to the hash's thumbnail, so memory follows the output size, not the source's (issue 17).
        let header = try ImageDecoder.header(bytes, name: source, maxPixels: options.maxPixels)
        let plan = try preparation.plan(width: header.width, height: header.height)
        var resize: RowResizer?
        var thumbnail: RowResizer?
        try ImageDecoder.decodeBands(bytes, name: source, maxPixels: options.maxPixels,
                                     needed: (plan.resized.width, plan.resized.height)) { band in
            let flat = try ImagePreparation.flatten(band.image)
            if resize == nil {
                // In the frame the file stores its pixels in (the resizers turn the small results upright).
                resize = try RowResizer(band: band, channels: 3, width: plan.resized.width, height: plan.resized.height,
                                        filter: preparation.settings.resampleFilter)
                thumbnail = try PerceptualHash.thumbnailResizer(for: band)
            }
            try resize?.append(try flat.hwcTensor())
            try thumbnail?.append(try flat.gray().hwcTensor())
        }
        guard let resize, let thumbnail else { throw SkipReason(text: "the decoder produced no rows") }
        let perceptual = try PerceptualHash(thumbnail: try thumbnail.finish())
        let image = try preparation.frame(try resize.finish(), plan: plan)
        let png = Data(try image.pngData())
        let output = "\(DatasetManifest.imagesFolder)/\(stem).png"
        try writeAtomically(png, to: options.datasetDirectory.appendingPathComponent(output))
        return DatasetImage(source: source, sourceSHA256: actualSHA, output: output, outputSHA256: ContentHash.sha256(png),
                            width: image.width, height: image.height, sourceWidth: header.width, sourceHeight: header.height,
                            bucket: options.settings.buckets ? plan.canvas : nil, settings: options.settings,
                            split: .train, perceptualHash: perceptual.description)
    }

    /// The file's bytes read straight into one array (`[UInt8](Data(contentsOf:))` holds them twice for a
    /// moment, which for a 190 MB noise PNG is the largest allocation of the whole run).
    static func contents(of url: URL) -> [UInt8]? {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size >= 0 else { return nil }
        let size = Int(info.st_size)
        var complete = true
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            while initialized < size {
                let n = read(fd, buffer.baseAddress! + initialized, size - initialized)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { complete = false; break }
                initialized += n
            }
        }
        return complete ? bytes : nil
    }

    /// Recomputes the split and the near-duplicate pairs, then writes the manifest.
    private func save(_ manifest: inout DatasetManifest, previousSplit: [String: Split]) throws {
        manifest.images.sort { $0.source < $1.source }
        let split = options.validation.assign(manifest.images.map(\.source), previous: previousSplit)
        for i in manifest.images.indices { manifest.images[i].split = split[manifest.images[i].source] ?? .train }
        let hashes = manifest.images.compactMap { entry in PerceptualHash(hex: entry.perceptualHash).map { (entry.source, $0) } }
        manifest.nearDuplicates = PerceptualHash.nearDuplicates(hashes, threshold: options.nearDuplicateThreshold)
        try manifest.save(datasetDirectory: options.datasetDirectory)
    }

    /// Deletes PNGs in images/ that the manifest does not list (left by a killed run, or by an entry that
    /// was dropped). Only PNGs: anything else a user put there is theirs.
    private func removeOrphans(in folder: URL, manifest: DatasetManifest) {
        let listed = Set(manifest.images.map { ($0.output as NSString).lastPathComponent })
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names where name.lowercased().hasSuffix(".png") && !listed.contains(name) {
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
        }
    }

    /// A reason without the file name that the report line already starts with.
    static func reason(_ error: Error, file: String) -> String {
        if let skip = error as? SkipReason { return skip.text }
        let text = String(describing: error)
        return text.hasPrefix(file + ": ") ? String(text.dropFirst(file.count + 2)) : text
    }
}
