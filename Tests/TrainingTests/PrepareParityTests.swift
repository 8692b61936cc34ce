// `prepare` against Pillow: reference/fixtures/prepare.py builds a raw folder with Pillow and computes,
// with Pillow and numpy, what every valid file must become (composite on white, RGB, LANCZOS resize,
// centre crop or white pad, buckets, clean-up). Tolerance: ±2 levels per sample (the bound; the
// Imaging layer decodes and resizes exactly as Pillow, so the outputs are expected to be identical).
import Foundation
import Imaging
import Testing
import TestSupport
@testable import Training

@Suite struct PrepareParityTests {
    /// Runs one fixture case and compares every output with Pillow's.
    func check(_ caseName: String, resolution: Int, fit: Fit, buckets: Bool = false, clean: Bool = false,
               maxUpscale: Double = 2) throws {
        let expected = try PrepareExpectations.load()
        let sizes = try #require(expected.sizes[caseName])
        let (raw, dataset) = try DatasetTest.rawCopy()
        let report = try DatasetTest.run(DatasetTest.options(raw, dataset, resolution: resolution, fit: fit, buckets: buckets,
                                                             clean: clean, maxUpscale: maxUpscale))
        #expect(report.manifest.images.map(\.source) == expected.valid, "\(caseName): prepared sources")
        for entry in report.manifest.images {
            let stem = (entry.source as NSString).deletingPathExtension.replacingOccurrences(of: "/", with: "__")
            let reference = try Image.load(try Fixtures.url("prepare", "expected/\(caseName)/\(stem).png"))
            let ours = try Image.load(dataset.appendingPathComponent(entry.output))
            #expect(ours.channels == 3, "\(caseName) \(entry.source): RGB output")
            #expect([ours.width, ours.height] == sizes[entry.source], "\(caseName) \(entry.source): size")
            #expect(entry.width == ours.width && entry.height == ours.height, "\(caseName) \(entry.source): manifest size")
            let difference = DatasetTest.maxDifference(ours, try reference.rgb())
            #expect((difference ?? Int.max) <= 2, "\(caseName) \(entry.source): max difference \(String(describing: difference))")
            if buckets {
                #expect(entry.bucket == BucketSize(width: ours.width, height: ours.height), "\(caseName) \(entry.source): bucket")
            } else {
                #expect(entry.bucket == nil)
            }
        }
    }

    @Test func cropAt64MatchesPillow() throws { try check("crop64", resolution: 64, fit: .crop) }
    @Test func padAt64MatchesPillow() throws { try check("pad64", resolution: 64, fit: .pad) }
    @Test func bucketsAt128MatchPillow() throws { try check("bucket128", resolution: 128, fit: .crop, buckets: true) }
    @Test func paddedBucketsAt128MatchPillow() throws { try check("bucket128pad", resolution: 128, fit: .pad, buckets: true) }
    @Test func ownBucketsWithoutUpscalingMatchPillow() throws {
        try check("bucket128up1", resolution: 128, fit: .crop, buckets: true, maxUpscale: 1)
    }
    @Test func cleanUpMatchesTheNumpyReference() throws { try check("clean64", resolution: 64, fit: .crop, clean: true) }

    @Test func turnedAndReducedInputsMatchPillow() throws {
        // reference/fixtures/decode_bands.py: EXIF-turned PNGs (decoded in bands as stored, turned after the
        // resize) and JPEGs decoded at 1/4 and 1/8 with sides that do not divide (resized over draft's box).
        let root = try temporaryDirectory()
        let raw = root.appendingPathComponent("raw"), dataset = root.appendingPathComponent("processed/set")
        try FileManager.default.createDirectory(at: raw, withIntermediateDirectories: true)
        let files = ["draftbox/rgb.jpg", "draftbox/o6.jpg", "draftbox/o7.jpg", "orient/o3.png", "orient/rgba_o7.png"]
        for file in files {
            try FileManager.default.copyItem(at: try Fixtures.url("decode_bands", file),
                                             to: raw.appendingPathComponent((file as NSString).lastPathComponent))
        }
        let report = try DatasetTest.run(DatasetTest.options(raw, dataset, resolution: 128, fit: .crop))
        #expect(report.manifest.images.count == files.count)
        for entry in report.manifest.images {
            let stem = (entry.source as NSString).deletingPathExtension
            let reference = try Image.load(try Fixtures.url("decode_bands", "prepared/\(stem).png"))
            let ours = try Image.load(dataset.appendingPathComponent(entry.output))
            let difference = DatasetTest.maxDifference(ours, reference)
            #expect(difference == 0, "\(entry.source): max difference \(String(describing: difference))")
        }
    }

    @Test func resizeFollowsPillowsPassOrder() throws {
        let expected = try PrepareExpectations.load()
        let source = try Image.load(try Fixtures.url("prepare", "expected/resize/source.png"))
        #expect(expected.resizes.count == 22)
        var horizontalFirstDiffers = 0
        for c in expected.resizes {
            let filter = try #require(ResampleFilter(rawValue: c.filter))
            let reference = try Image.load(try Fixtures.url("prepare", "expected/resize/\(c.key).png"))
            let ours = try ImagePreparation.resized(source, to: BucketSize(width: c.width, height: c.height), filter: filter)
            #expect(DatasetTest.maxDifference(ours, reference) == 0, "\(c.key): exact")
            #expect(DatasetTest.maxDifference(try source.resized(width: c.width, height: c.height, filter: filter), reference) == 0,
                    "\(c.key): Image.resized exact")
            // Always horizontal first: two single-axis resizes in that order.
            let horizontalFirst = try source.resized(width: c.width, height: source.height, filter: filter)
                .resized(width: c.width, height: c.height, filter: filter)
            if DatasetTest.maxDifference(horizontalFirst, reference) != 0 { horizontalFirstDiffers += 1 }
        }
        // The cases where Pillow runs the vertical pass first really differ from horizontal-first.
        #expect(horizontalFirstDiffers >= 6)
    }

    @Test func brokenFilesAreReportedByNameAndReasonAndTheRunGoesOn() throws {
        let expected = try PrepareExpectations.load()
        let (raw, dataset) = try DatasetTest.rawCopy()
        let report = try DatasetTest.run(DatasetTest.options(raw, dataset))
        // Each kind of failure, as the report words it.
        let wording = ["truncated": "truncated", "empty": "empty file (0 bytes)", "unsupported": "unsupported image format (GIF)",
                       "tooLarge": "over the limit", "tooSmall": "too small", "duplicate": "exact duplicate of"]
        #expect(report.skipped.map(\.source) == expected.skipped.keys.sorted())
        for skip in report.skipped {
            let kind = try #require(expected.skipped[skip.source])
            let words = try #require(wording[kind])
            #expect(skip.reason.contains(words), "\(skip.source): '\(skip.reason)' should say \(words)")
            #expect(skip.description.hasPrefix(skip.source + ": "), "the report line names the file")
        }
        #expect(report.manifest.skipped == report.skipped, "the manifest records the skipped files")
        // Every valid file still made it, after the broken ones (anim.gif and corrupt.png sort first).
        #expect(report.processed == expected.valid)
        let outputs = try FileManager.default.contentsOfDirectory(atPath: dataset.appendingPathComponent("images").path)
        #expect(outputs.sorted() == report.manifest.images.map { ($0.output as NSString).lastPathComponent }.sorted())
    }

    @Test func exactDuplicateSkippedAndNearDuplicateReported() throws {
        let expected = try PrepareExpectations.load()
        let (raw, dataset) = try DatasetTest.rawCopy()
        let report = try DatasetTest.run(DatasetTest.options(raw, dataset))
        for (copy, original) in expected.duplicates {
            let skip = try #require(report.skipped.first { $0.source == copy })
            #expect(skip.reason == "exact duplicate of \(original) (same SHA-256)")
            #expect(report.manifest.images.contains { $0.source == original })
        }
        // Exactly the constructed pair, and nothing else among unrelated drawings; both are kept.
        #expect(report.nearDuplicates.map { [$0.first, $0.second] } == expected.near)
        for pair in report.nearDuplicates {
            #expect(pair.distance <= PerceptualHash.defaultThreshold)
            #expect(report.manifest.images.contains { $0.source == pair.second })
        }
        let distances = report.manifest.images.compactMap { PerceptualHash(hex: $0.perceptualHash) }
        #expect(distances.count == report.manifest.images.count, "every entry has a parsable hash")
    }

    @Test func outputsAreNamedAfterTheirSourcesAndCollisionsGetNumbers() throws {
        let (raw, dataset) = try DatasetTest.rawCopy()
        try DatasetTest.writeImage(raw.appendingPathComponent("grey.jpg.png"), width: 80, height: 80, seed: 3)
        try DatasetTest.writeImage(raw.appendingPathComponent("grey.webp"), width: 90, height: 70, seed: 4)
        let report = try DatasetTest.run(DatasetTest.options(raw, dataset))
        let names = Dictionary(uniqueKeysWithValues: report.manifest.images.map { ($0.source, $0.output) })
        #expect(names["grey.png"] == "images/grey.png")
        #expect(names["grey.webp"] == "images/grey-2.png")
        #expect(names["grey.jpg.png"] == "images/grey.jpg.png")
        #expect(names["sub/nested.png"] == "images/sub__nested.png")
        #expect(report.manifest.images.first { $0.source == "sub/nested.png" }?.stem == "sub__nested")
    }
}
