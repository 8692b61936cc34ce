// The validation split: the documented hash rule (checked against the Python statement of it, run live),
// at least one held-out image, and stability when images are added.
import Foundation
import Testing
import TestSupport
@testable import Training

@Suite struct SplitTests {
    static let names = (0..<60).map { "tattoo_\($0).png" } + ["koi.png", "sub/dragon.jpg", "rose (1).webp", "ñandú.png"]

    /// What reference/fixtures/prepare.py --split computes for a fresh dataset.
    func reference(_ names: [String], fraction: Double, seed: UInt64) throws -> [String: Split] {
        let output = try runReference("fixtures/prepare.py", ["--split", "\(fraction)", "\(seed)"] + names)
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(output.utf8))
        return try decoded.mapValues { try #require(Split(rawValue: $0)) }
    }

    @Test func hashRuleMatchesTheReference() throws {
        for (fraction, seed) in [(0.05, UInt64(0)), (0.2, 7), (0.5, 12345)] {
            let split = try ValidationSplit(fraction: fraction, seed: seed)
            let ours = split.assign(Self.names)
            #expect(ours == (try reference(Self.names, fraction: fraction, seed: seed)), "fraction \(fraction) seed \(seed)")
            let held = ours.values.filter { $0 == .validation }.count
            #expect(held >= 1 && held < Self.names.count)
        }
        // Small sets where the corrections decide: none below 1 %, or all below 99 %.
        for (names, fraction) in [(["a.png", "b.png", "c.png"], 0.01), (["a.png", "b.png"], 0.99)] {
            let ours = try ValidationSplit(fraction: fraction, seed: 3).assign(names)
            #expect(ours == (try reference(names, fraction: fraction, seed: 3)))
        }
    }

    @Test func atLeastOneValidationAndOneTrainingImageFromTwoImages() throws {
        let split = try ValidationSplit(fraction: 0.05, seed: 0)
        for n in 2...40 {
            let assigned = split.assign(Array(Self.names.prefix(n)))
            let held = assigned.values.filter { $0 == .validation }.count
            #expect(held >= 1 && held < n, "\(n) images: \(held) held out")
        }
        #expect(split.assign(["only.png"]) == ["only.png": .train], "a single image trains")
        #expect(try ValidationSplit(fraction: 0, seed: 0).assign(Self.names).values.allSatisfy { $0 == .train })
    }

    @Test func addingImagesNeverMovesExistingOnes() throws {
        let split = try ValidationSplit(fraction: 0.1, seed: 5)
        // Grow one image at a time from 1 to 64, keeping what each run recorded, as prepare does.
        var recorded: [String: Split] = [:]
        for n in 1...Self.names.count {
            let next = split.assign(Array(Self.names.prefix(n)), previous: recorded)
            for (name, side) in recorded where n > 2 {
                #expect(next[name] == side, "\(name) moved when image \(n) was added")
            }
            recorded = next
        }
        // And the plain rule (no corrections needed at this size) is the same whatever else is in the set.
        let whole = split.assign(Self.names)
        let half = split.assign(Array(Self.names.suffix(32)))
        for (name, side) in half { #expect(whole[name] == side) }
    }

    @Test func preparedManifestRecordsTheSplitAndKeepsItWhenImagesAreAdded() throws {
        let (raw, dataset) = try DatasetTest.rawCopy()
        var options = DatasetTest.options(raw, dataset)
        options.validation = try ValidationSplit(fraction: 0.2, seed: 11)
        let first = try Preparer(options).run().manifest
        #expect(first.images.contains { $0.split == .validation } && first.images.contains { $0.split == .train })
        #expect(first.validation == options.validation)
        for i in 0..<12 { try DatasetTest.writeImage(raw.appendingPathComponent("added_\(i).png"), width: 70, height: 64, seed: 20 + i) }
        let second = try Preparer(options).run().manifest
        #expect(second.images.count == first.images.count + 12)
        for entry in first.images {
            #expect(second.images.first { $0.source == entry.source }?.split == entry.split, "\(entry.source) kept its split")
        }
        // A new seed is a new split, computed from scratch by the rule.
        options.validation = try ValidationSplit(fraction: 0.2, seed: 12)
        let reseeded = try Preparer(options).run().manifest
        let expected = try reference(reseeded.images.map(\.source), fraction: 0.2, seed: 12)
        #expect(Dictionary(uniqueKeysWithValues: reseeded.images.map { ($0.source, $0.split) }) == expected)
    }
}
