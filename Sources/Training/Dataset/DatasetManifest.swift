// `data/processed/<dataset>/manifest.json`: what `prepare` made, from what, and how. It is the
// stage's memory (a rerun redoes only images whose source content or settings changed) and the
// trainer's index (output file, size, bucket, split for every image).
//
// An entry is up to date when its source still has the recorded SHA-256, the settings are the recorded
// ones, and the output file still has the recorded SHA-256. Checking the output too means that an
// output overwritten by a run that was killed before it saved the manifest is simply redone.
import AtomicFile
import Foundation
import Imaging

/// The settings that decide an output's pixels. Changing any of them redoes every image.
public struct PrepareSettings: Codable, Equatable, Sendable {
    /// Side of the square output, or of the square a bucket's area is measured against: a multiple of 64.
    public var resolution: Int = 512
    public var fit: Fit = .crop
    /// Aspect-ratio buckets instead of one square.
    public var buckets: Bool = false
    /// Largest enlargement of a source (1 = never enlarge).
    public var maxUpscale: Double = 2
    /// Levels and speck removal for scanned line art.
    public var clean: Bool = false
    /// The resampling filter, a `ResampleFilter` name: lanczos (default) or bicubic.
    public var filter: String = ResampleFilter.lanczos.rawValue

    public static let presets = [384, 512]
    public static let allowedFilters: [ResampleFilter] = [.lanczos, .bicubic]

    public init() {}

    /// Checks every value, naming the flag that set it.
    public func validated() throws -> PrepareSettings {
        guard resolution >= 64, resolution <= 4096, resolution % 64 == 0 else {
            throw DatasetError("--resolution must be a multiple of 64 from 64 to 4096 (presets: 384, 512), got \(resolution)")
        }
        guard maxUpscale.isFinite, maxUpscale >= 1 else {
            throw DatasetError("--max-upscale must be 1 (never enlarge) or more, got \(maxUpscale)")
        }
        guard let f = ResampleFilter(rawValue: filter), Self.allowedFilters.contains(f) else {
            throw DatasetError("--filter must be lanczos or bicubic, got '\(filter)'")
        }
        return self
    }

    var resampleFilter: ResampleFilter { ResampleFilter(rawValue: filter) ?? .lanczos }
}

/// One prepared image.
public struct DatasetImage: Codable, Equatable, Sendable {
    /// The source file, relative to the input folder ("/"-separated).
    public var source: String
    public var sourceSHA256: String
    /// The output PNG, relative to the dataset folder ("images/<name>.png").
    public var output: String
    public var outputSHA256: String
    public var width: Int
    public var height: Int
    /// The source's size after EXIF orientation.
    public var sourceWidth: Int
    public var sourceHeight: Int
    /// The bucket the image trains in (its output size) when buckets are on; nil for the fixed square.
    public var bucket: BucketSize?
    public var settings: PrepareSettings
    public var split: Split
    /// The 64-bit perceptual hash of the source, 16 hex digits (for near-duplicate reports).
    public var perceptualHash: String

    /// The output's file name without ".png": the stem captions are named after.
    public var stem: String {
        let name = (output as NSString).lastPathComponent
        return name.hasSuffix(".png") ? String(name.dropLast(4)) : name
    }
}

/// A file that produced no output, and why.
public struct SkippedFile: Codable, Equatable, Sendable, CustomStringConvertible {
    public var source: String
    public var reason: String
    public init(source: String, reason: String) { (self.source, self.reason) = (source, reason) }
    public var description: String { "\(source): \(reason)" }
}

public struct DatasetManifest: Codable, Equatable, Sendable {
    public static let fileName = "manifest.json"
    public static let imagesFolder = "images"
    public static let currentVersion = 1

    public var version = DatasetManifest.currentVersion
    /// The dataset's name (its folder under the output folder).
    public var name: String
    /// The input folder of the last run (absolute).
    public var input: String
    /// The settings of the last run (each image also records its own).
    public var settings: PrepareSettings
    public var validation: ValidationSplit
    /// Sorted by source.
    public var images: [DatasetImage]
    /// Files of the last run that produced no output.
    public var skipped: [SkippedFile]
    public var nearDuplicates: [NearDuplicate]

    public init(name: String, input: String, settings: PrepareSettings, validation: ValidationSplit) {
        self.name = name
        self.input = input
        self.settings = settings
        self.validation = validation
        images = []
        skipped = []
        nearDuplicates = []
    }

    /// Reads `<dataset>/manifest.json`; nil when there is none.
    public static func load(datasetDirectory: URL) throws -> DatasetManifest? {
        let url = datasetDirectory.appendingPathComponent(fileName)
        guard let manifest = try ManifestJSON.decode(DatasetManifest.self, from: url) else { return nil }
        guard manifest.version == currentVersion else {
            throw DatasetError("\(url.path): manifest version \(manifest.version) is not \(currentVersion); rerun `inkwell prepare --force`")
        }
        return manifest
    }

    /// Writes it atomically.
    public func save(datasetDirectory: URL) throws {
        var copy = self
        copy.images.sort { $0.source < $1.source }
        try writeAtomically(try ManifestJSON.encode(copy), to: datasetDirectory.appendingPathComponent(Self.fileName))
    }

    public func images(in split: Split) -> [DatasetImage] { images.filter { $0.split == split } }

    /// The images grouped by bucket (by output size when buckets are off), for batching.
    public var imagesByBucket: [BucketSize: [DatasetImage]] {
        Dictionary(grouping: images) { $0.bucket ?? BucketSize(width: $0.width, height: $0.height) }
    }
}
