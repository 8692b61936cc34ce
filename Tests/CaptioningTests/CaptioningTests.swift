// Shared helpers of the Captioning tests: the fixture area written by reference/fixtures/blip.py (tiny
// random BLIP model, tokenizer corpus, image-processor outputs, BLIP-large key/shape map), read live.
import Foundation
import Testing
import TestSupport
import Torch
@testable import Captioning

/// The fixture area written by reference/fixtures/blip.py.
let blipArea = "blip"

/// A fixture JSON file decoded as `T`.
func blipJSON<T: Decodable>(_ type: T.Type, _ file: String) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(contentsOf: Fixtures.url(blipArea, file)))
}

/// The tiny model's transformers folder.
func tinyFolder() throws -> URL { try Fixtures.url(blipArea, "blip_tiny") }

/// `expectClose` that also prints the measured error, so reports can quote it.
func expectCloseReporting(_ actual: Tensor, _ expected: Tensor, atol: Double, _ label: String,
                          sourceLocation: SourceLocation = #_sourceLocation) throws {
    if actual.shape == expected.shape { print("[parity] \(label): max abs diff \(try maxAbsDiff(actual, expected))") }
    try expectClose(actual, expected, atol: atol, label, sourceLocation: sourceLocation)
}

/// The rows of an int64 tensor [B, L] as Swift arrays.
func rows(_ t: Tensor) throws -> [[Int]] {
    let flat = try t.toArray(Int64.self).map(Int.init)
    let width = t.size(1)
    return stride(from: 0, to: flat.count, by: Swift.max(width, 1)).map { Array(flat[$0..<($0 + width)]) }
}
