// The caption stage with a deterministic stub captioner: hand-written captions win, edited files are kept,
// reruns do only what changed, --force recaptions, batches are batches, and no captioner means a clear
// error rather than invented captions.
import Captioning
import Foundation
import Imaging
import RunFiles
import StableDiffusion
import Testing
import TestSupport
@testable import Training

/// Captions from the pixels, so a changed image gets a changed caption; records every call.
final class StubCaptioner: ImageCaptioner, @unchecked Sendable {
    let identity: String
    let preferredBatchSize: Int
    private(set) var batches: [Int] = []

    init(identity: String = "stub v1", batchSize: Int = 4) {
        self.identity = identity
        preferredBatchSize = batchSize
    }

    static func text(_ image: Image) -> String {
        "a drawing of \(image.width) by \(image.height) with ink \(image.pixels.reduce(0) { $0 + Int($1) } % 9973)"
    }

    func caption(_ images: [Image]) throws -> [String] {
        batches.append(images.count)
        return images.map(Self.text)
    }
}

@Suite struct CaptionStageTests {
    static let handWritten = "  A koi fish\nleaping through   waves. "

    /// A prepared dataset (10 images at 64 px) whose photo.jpg has a hand-written caption.
    func dataset() throws -> (raw: URL, dataset: URL) {
        let (raw, dataset) = try DatasetTest.rawCopy()
        try Data(Self.handWritten.utf8).write(to: raw.appendingPathComponent("photo.txt"))
        _ = try DatasetTest.run(DatasetTest.options(raw, dataset))
        return (raw, dataset)
    }

    func tokenizer() throws -> CLIPTokenizer { try CLIPTokenizer(folder: try Fixtures.url("clip_tokenizer", "sd15")) }

    func stage(_ dataset: URL, _ captioner: StubCaptioner?, force: Bool = false, overwrite: Bool = false,
               variants: [CaptionVariant] = [.blip, .blipPlus]) throws -> CaptionStage {
        var options = CaptionOptions(datasetDirectory: dataset)
        options.variants = variants
        options.force = force
        options.overwriteCaptions = overwrite
        return try CaptionStage(options, captioner: captioner, tokenizer: try tokenizer())
    }

    func read(_ dataset: URL, _ variant: CaptionVariant, _ stem: String) throws -> String {
        let folder = try #require(variant.folderName)
        return try String(contentsOf: dataset.appendingPathComponent("\(folder)/\(stem).txt"), encoding: .utf8)
    }

    func enriched(_ text: String) throws -> String {
        let tokenizer = try tokenizer()
        return StyleHints(StyleHints.defaultHints).enrich(text, tokenLimit: 77, tokenCount: { tokenizer.encode($0).count }).text
    }

    @Test func writesEveryVariantAndPrefersHandWrittenCaptions() throws {
        let (_, dataset) = try dataset()
        let stub = StubCaptioner()
        let report = try stage(dataset, stub).run()
        let manifest = try #require(try DatasetManifest.load(datasetDirectory: dataset))
        #expect(report.handWritten == ["photo"])
        #expect(report.captioned.sorted() == manifest.images.map(\.stem).filter { $0 != "photo" }.sorted())
        #expect(stub.batches == [4, 4, 1], "9 images in batches of the captioner's preferred 4")
        #expect(report.written[.blip]?.count == 10 && report.written[.blipPlus]?.count == 10)
        #expect(try read(dataset, .blip, "photo") == "A koi fish leaping through waves.\n")
        #expect(try read(dataset, .blipPlus, "photo") == (try enriched("A koi fish leaping through waves.")) + "\n")
        for entry in manifest.images where entry.stem != "photo" {
            let image = try Image.load(dataset.appendingPathComponent(entry.output))
            #expect(try read(dataset, .blip, entry.stem) == StubCaptioner.text(image) + "\n")
            #expect(try read(dataset, .blipPlus, entry.stem) == (try enriched(StubCaptioner.text(image))) + "\n")
        }
        #expect(try read(dataset, .blipPlus, "grey") .hasSuffix(", clean line tattoo, high contrast, stencil, no shading\n"))
    }

    @Test func rerunDoesNothingAndForceRecaptionsAllButHandWritten() throws {
        let (_, dataset) = try dataset()
        _ = try stage(dataset, StubCaptioner()).run()
        let quiet = StubCaptioner()
        let rerun = try stage(dataset, quiet).run()
        #expect(quiet.batches.isEmpty)
        #expect(rerun.written.isEmpty && rerun.upToDate[.blip]?.count == 10 && rerun.upToDate[.blipPlus]?.count == 10)

        let forced = StubCaptioner()
        let report = try stage(dataset, forced, force: true).run()
        #expect(forced.batches.reduce(0, +) == 9)
        #expect(report.written[.blip]?.count == 10)
        #expect(try read(dataset, .blip, "photo") == "A koi fish leaping through waves.\n")
    }

    /// A run killed after writing a caption file and before recording it (KillSafetyTests found it): the file was
    /// then taken for one edited by hand, kept for good and recorded as "edited", so no later run recaptioned it.
    @Test func aCaptionFileWrittenButNotRecordedIsTheStagesOwn() throws {
        let (_, dataset) = try dataset()
        _ = try stage(dataset, StubCaptioner()).run()
        let stem = "grey"
        // The state such a kill leaves: the model's text recorded (before the files), the files written, their records not.
        var manifest = try #require(try CaptionManifest.load(datasetDirectory: dataset))
        for folder in manifest.files.keys { manifest.files[folder]?[stem] = nil }
        try manifest.save(datasetDirectory: dataset)
        let quiet = StubCaptioner()
        let report = try stage(dataset, quiet).run()
        #expect(report.keptEdited.isEmpty, "\(report.keptEdited)")
        #expect(quiet.batches.isEmpty, "the recorded text is used, not recaptioned")
        #expect(report.written[.blip] == [stem] && report.written[.blipPlus] == [stem])
        let records = try #require(try CaptionManifest.load(datasetDirectory: dataset)).files
        #expect(records["captions_blip"]?[stem]?.basis.hasPrefix("model ") == true)
        // A file edited by hand is still kept.
        try Data("my own words\n".utf8).write(to: dataset.appendingPathComponent("captions_blip/\(stem).txt"))
        #expect(try stage(dataset, StubCaptioner()).run().keptEdited[.blip] == [stem])
    }

    @Test func changedImageOrCaptionerRedoesOnlyWhatChanged() throws {
        let (raw, dataset) = try dataset()
        _ = try stage(dataset, StubCaptioner()).run()
        try DatasetTest.writeImage(raw.appendingPathComponent("tall.png"), width: 90, height: 240, seed: 5)
        _ = try DatasetTest.run(DatasetTest.options(raw, dataset))
        let stub = StubCaptioner()
        let report = try stage(dataset, stub).run()
        #expect(report.captioned == ["tall"] && stub.batches == [1])
        #expect(report.written[.blip] == ["tall"] && report.written[.blipPlus] == ["tall"])

        // A new captioner identity (another model or other generation settings) recaptions the model-made ones.
        let other = StubCaptioner(identity: "stub v2")
        #expect(try stage(dataset, other).run().captioned.count == 9)
        // A changed hand-written caption rewrites that image's files only.
        try Data("a carp".utf8).write(to: raw.appendingPathComponent("photo.txt"))
        let again = try stage(dataset, StubCaptioner(identity: "stub v2")).run()
        #expect(again.captioned.isEmpty && again.written[.blip] == ["photo"])
        #expect(try read(dataset, .blip, "photo") == "a carp\n")
    }

    @Test func editedCaptionsAreKeptUnlessOverwriteIsAsked() throws {
        let (_, dataset) = try dataset()
        _ = try stage(dataset, StubCaptioner()).run()
        let edited = dataset.appendingPathComponent("captions_blip/grey.txt")
        try Data("a grey koi, fixed by hand\n".utf8).write(to: edited)

        for force in [false, true] {
            let report = try stage(dataset, StubCaptioner(), force: force).run()
            #expect(report.keptEdited[.blip] == ["grey"], "force \(force)")
            #expect(try read(dataset, .blip, "grey") == "a grey koi, fixed by hand\n")
            #expect(try read(dataset, .blipPlus, "grey") == (try enriched("a grey koi, fixed by hand")) + "\n", "blip_plus follows the edit")
        }

        let stub = StubCaptioner()
        let overwritten = try stage(dataset, stub, overwrite: true).run()
        // The model's cached captions are reused; only photo, which had a hand-written caption, needs the model.
        #expect(overwritten.captioned == ["photo"] && stub.batches == [1])
        #expect(overwritten.written[.blip]?.sorted() == ["grey", "photo"], "hand-written and edited captions are replaced")
        let grey = try Image.load(dataset.appendingPathComponent("images/grey.png"))
        #expect(try read(dataset, .blip, "grey") == StubCaptioner.text(grey) + "\n")
        #expect(try read(dataset, .blip, "photo") != "A koi fish leaping through waves.\n")
    }

    @Test func withoutACaptionerOnlyHandWrittenCaptionsCanBeUsed() throws {
        let (raw, dataset) = try dataset()
        do {
            _ = try stage(dataset, nil).run()
            Issue.record("images without captions need a captioner")
        } catch let error as CaptionStageError {
            if case .captionerNeeded(let stems) = error { #expect(stems.count == 9 && !stems.contains("photo")) }
            #expect(error.description.contains("9 images have no hand-written caption"))
        }
        #expect(!FileManager.default.fileExists(atPath: dataset.appendingPathComponent("captions_blip/grey.txt").path),
                "no caption is invented")
        let manifest = try #require(try DatasetManifest.load(datasetDirectory: dataset))
        for entry in manifest.images {
            let sidecar = raw.appendingPathComponent((entry.source as NSString).deletingPathExtension + ".txt")
            try Data("drawing \(entry.stem)".utf8).write(to: sidecar)
        }
        let report = try stage(dataset, nil).run()
        #expect(report.handWritten.count == 10 && report.written[.blip]?.count == 10)
        #expect(try read(dataset, .blip, "sub__nested") == "drawing sub__nested\n")
    }

    @Test func captionsOfRemovedImagesAreDeletedAndVanillaNeedsNoFiles() throws {
        let (raw, dataset) = try dataset()
        _ = try stage(dataset, StubCaptioner()).run()
        try FileManager.default.removeItem(at: raw.appendingPathComponent("wide.png"))
        _ = try DatasetTest.run(DatasetTest.options(raw, dataset))
        let report = try stage(dataset, StubCaptioner()).run()
        #expect(report.removed == ["wide"])
        #expect(!FileManager.default.fileExists(atPath: dataset.appendingPathComponent("captions_blip/wide.txt").path))
        #expect(!FileManager.default.fileExists(atPath: dataset.appendingPathComponent("captions_blip_plus/wide.txt").path))
        #expect(try CaptionManifest.load(datasetDirectory: dataset)?.generated["wide"] == nil)

        let vanilla = StubCaptioner()
        let none = try stage(dataset, vanilla, variants: [.vanilla]).run()
        #expect(vanilla.batches.isEmpty && none.written.isEmpty && none.captioned.isEmpty)
    }
}
