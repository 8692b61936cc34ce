// The image corpus that reference/fixtures/images.py writes with Pillow, and Pillow's pixels for it.
import Foundation
import Testing
import TestSupport
import Torch
@testable import Imaging

struct CorpusEntry: Decodable {
    let file: String
    /// Pillow's format name: PNG, JPEG, WEBP.
    let format: String
    /// Pillow's mode on open (L, LA, RGB, RGBA, P, 1, I;16, CMYK).
    let mode: String
    /// Pillow's `has_transparency_data`.
    let alpha: Bool
}

struct BrokenEntry: Decodable {
    let file: String
    let reason: String
}

enum CorpusError: Error { case noCatalog }

enum Corpus {
    static let area = "images"

    /// key → Pillow's `exif_transpose(open(file)).convert("RGBA")`, uint8 (H, W, 4).
    static func decoded() throws -> (pixels: [String: Tensor], catalog: [String: CorpusEntry]) {
        let (tensors, metadata) = try Safetensors.load(try Fixtures.url(area, "decoded.safetensors"))
        guard let json = metadata["catalog"] else { throw CorpusError.noCatalog }
        let catalog = try JSONDecoder().decode([String: CorpusEntry].self, from: Data(json.utf8))
        return (tensors, catalog)
    }

    static func url(_ file: String) throws -> URL { try Fixtures.url(area, "files/" + file) }

    static func broken() throws -> [BrokenEntry] {
        try JSONDecoder().decode([BrokenEntry].self, from: Data(contentsOf: try Fixtures.url(area, "broken.json")))
    }

    /// Decodes `entry`, and the largest per-sample difference from Pillow's RGBA pixels (nil and an
    /// issue when the sizes differ).
    static func compare(_ key: String, _ entry: CorpusEntry, _ expected: Tensor,
                        sourceLocation: SourceLocation = #_sourceLocation) throws -> (DecodedImage, Double?) {
        let decoded = try ImageDecoder.read(try url(entry.file))
        let actual = try decoded.image.rgba().hwcTensor()
        guard actual.shape == expected.shape else {
            Issue.record("\(key): decoded \(actual.shape), Pillow \(expected.shape)", sourceLocation: sourceLocation)
            return (decoded, nil)
        }
        return (decoded, try maxAbsDiff(actual, expected))
    }
}
