// Shared helpers of the dataset tests: a private copy of the Pillow-made raw folder, runs of the stage,
// and pixel comparisons.
import Foundation
import Imaging
import Testing
import TestSupport
@testable import Training

/// What reference/fixtures/prepare.py says about its raw folder.
struct PrepareExpectations: Decodable {
    let valid: [String]
    let skipped: [String: String]
    let duplicates: [String: String]
    let near: [[String]]
    let sizes: [String: [String: [Int]]]
    let resizes: [ResizeCase]

    struct ResizeCase: Decodable {
        let filter: String
        let width: Int
        let height: Int
        let key: String
    }

    static func load() throws -> PrepareExpectations {
        try JSONDecoder().decode(PrepareExpectations.self, from: Data(contentsOf: try Fixtures.url("prepare", "expected.json")))
    }
}

enum DatasetTest {
    /// A fresh copy of the fixture's raw folder (tests change it) and an empty output folder.
    static func rawCopy() throws -> (raw: URL, dataset: URL) {
        let source = try Fixtures.url("prepare", "raw")
        let root = try temporaryDirectory()
        let raw = root.appendingPathComponent("raw")
        try FileManager.default.copyItem(at: source, to: raw)
        return (raw, root.appendingPathComponent("processed").appendingPathComponent("set"))
    }

    static func options(_ raw: URL, _ dataset: URL, resolution: Int = 64, fit: Fit = .crop, buckets: Bool = false,
                        clean: Bool = false, maxUpscale: Double = 2, force: Bool = false) -> PrepareOptions {
        var options = PrepareOptions(input: raw, datasetDirectory: dataset)
        options.settings.resolution = resolution
        options.settings.fit = fit
        options.settings.buckets = buckets
        options.settings.clean = clean
        options.settings.maxUpscale = maxUpscale
        options.force = force
        return options
    }

    static func run(_ options: PrepareOptions) throws -> PrepareReport {
        try Preparer(options).run()
    }

    /// The largest per-sample difference of two images, or nil when their sizes or modes differ.
    static func maxDifference(_ a: Image, _ b: Image) -> Int? {
        guard a.width == b.width, a.height == b.height, a.channels == b.channels else { return nil }
        return zip(a.pixels, b.pixels).reduce(0) { max($0, abs(Int($1.0) - Int($1.1))) }
    }

    /// Writes an RGB PNG whose pixels depend on `seed`, for sources a test adds or changes.
    static func writeImage(_ url: URL, width: Int, height: Int, seed: Int) throws {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in pixels.indices { pixels[i] = UInt8(truncatingIfNeeded: (i * 7 + seed * 131 + (i / (width * 3)) * seed) % 251) }
        try Image(width: width, height: height, channels: 3, pixels: pixels).writePNG(to: url)
    }

    static func modificationDate(_ url: URL) throws -> Date {
        try #require(try FileManager.default.attributesOfItem(atPath: url.path)[.modificationDate] as? Date)
    }
}
