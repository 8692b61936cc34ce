// `inkwell prepare`: raw images in, a training dataset (images/ + manifest.json) out.
import ArgumentParser
import Foundation
import Training

struct Prepare: ParsableCommand, ComputingCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn a folder of raw images into a training dataset: composited on white, RGB, resized, cropped or padded.",
        discussion: """
        Writes <output>/<name>/images/*.png and manifest.json. Reruns redo only new or changed images (content or \
        settings) and remove outputs whose source is gone; --force redoes all. Broken, empty, unsupported and huge \
        files are reported and skipped; exact duplicates are skipped, near duplicates reported. Ctrl-C stops after \
        the current image with everything finished kept.
        """)

    @Option(help: "Folder of raw images (PNG, JPEG, WebP), read recursively.") var input = "data/raw"
    @Option(help: "Folder that holds the datasets.") var output = "data/processed"
    @Option(help: "Dataset name, the folder under --output (default: the input folder's name).") var name: String?
    @Option(help: "Output side in pixels: 384 or 512, or any multiple of 64.") var resolution = 512
    @Option(help: "crop: fill the square, cutting the overhang (centred); pad: the whole image on white.") var fit = "crop"
    @Flag(help: "Aspect-ratio buckets (area at most resolution², sides multiples of 64) instead of one square.")
    var buckets = false
    @Option(name: .customLong("max-upscale"),
            help: "Largest enlargement of a small image (1 = never enlarge). Without --buckets a smaller image is skipped; with them it gets a smaller bucket.")
    var maxUpscale = 2.0
    @Flag(help: "Line-art clean-up: paper to white, ink to black (levels from the luminance), single-pixel specks removed.")
    var clean = false
    @Option(help: "Resampling filter, Pillow-exact: lanczos (sharper strokes) or bicubic.") var filter = "lanczos"
    @Option(name: .customLong("val-fraction"), help: "Share of images held out for validation (at least one when there are two or more).")
    var valFraction = 0.05
    @Option(name: .customLong("split-seed"), help: "Seed of the validation split.") var splitSeed: UInt64 = 0
    @Option(name: .customLong("max-pixels"), help: "Images with more pixels are refused before decoding.") var maxPixels = 64_000_000
    @Option(name: .customLong("duplicate-distance"), help: "Perceptual-hash distance (of 63 bits) reported as a near duplicate.")
    var duplicateDistance = 6
    @Flag(help: "Redo every image, even those up to date.") var force = false

    @OptionGroup var cpu: CPUOptions

    func run() throws {
        guard let fitMode = Fit(rawValue: fit.lowercased()) else { throw ValidationError("--fit must be crop or pad, got '\(fit)'") }
        guard maxPixels > 0 else { throw ValidationError("--max-pixels must be positive, got \(maxPixels)") }
        var settings = PrepareSettings()
        settings.resolution = resolution
        settings.fit = fitMode
        settings.buckets = buckets
        settings.maxUpscale = maxUpscale
        settings.clean = clean
        settings.filter = filter.lowercased()

        let inputURL = URL(fileURLWithPath: input)
        let datasetName = name ?? inputURL.standardizedFileURL.lastPathComponent
        guard !datasetName.isEmpty, !datasetName.contains("/"), datasetName != ".", datasetName != ".." else {
            throw ValidationError("--name must be a plain folder name, got '\(datasetName)'")
        }
        var options = PrepareOptions(input: inputURL,
                                     datasetDirectory: URL(fileURLWithPath: output).appendingPathComponent(datasetName))
        options.settings = settings
        options.validation = try ValidationSplit(fraction: valFraction, seed: splitSeed)
        options.force = force
        options.maxPixels = maxPixels
        options.nearDuplicateThreshold = duplicateDistance

        let preparer = try Preparer(options)
        let interruption = Interruption.install()
        var bar: ProgressLine?
        var phase: PrepareProgress.Phase?
        let report = try preparer.run { progress in
            if progress.phase != phase {
                phase = progress.phase
                bar = progress.total > 0 ? ProgressLine(total: progress.total, label: progress.phase.rawValue, unit: "img") : nil
            }
            bar?.update(progress.done, detail: progress.file)
            return !interruption.requested
        }
        for line in report.summary { say(line) }
        say("dataset: \(options.datasetDirectory.path)")
        if report.interrupted { throw ExitCode(130) }
    }
}
