// The held-out validation images. An image is in validation iff a hash of (its name, the seed) falls
// below the fraction: each image decides alone, so adding images never moves the ones already there
// (a shuffled list would reshuffle on every addition).
//
//   u(name) = first 8 bytes, big-endian, of SHA-256(UTF-8 "<seed>:<name>"), divided by 2^64
//   validation ⇔ u(name) < fraction
//
// Two corrections keep small datasets usable, both decided by u as well, so they are deterministic:
// with 2 or more images and none below the fraction, the image with the smallest u is held out; with
// every image below it, the one with the largest u trains. A correction could change when images are
// added, so assignments recorded by an earlier run with the same fraction and seed are kept as they are
// (the rule above only places images that have none yet).
import Crypto
import Foundation

public enum Split: String, Codable, Sendable, CaseIterable {
    case train
    case validation
}

public struct ValidationSplit: Codable, Equatable, Sendable {
    /// Share of the images held out, in [0, 1). 0 holds out nothing.
    public var fraction: Double
    public var seed: UInt64

    public static let defaultFraction = 0.05
    /// 5 %, seed 0.
    public static let standard = ValidationSplit(checked: defaultFraction, seed: 0)

    private init(checked fraction: Double, seed: UInt64) {
        self.fraction = fraction
        self.seed = seed
    }

    public init(fraction: Double = ValidationSplit.defaultFraction, seed: UInt64 = 0) throws {
        guard fraction.isFinite, fraction >= 0, fraction < 1 else {
            throw DatasetError("--val-fraction must be at least 0 and below 1, got \(fraction)")
        }
        self.fraction = fraction
        self.seed = seed
    }

    /// u(name) in [0, 1).
    public func unit(_ name: String) -> Double {
        let digest = Array(SHA256.hash(data: Data("\(seed):\(name)".utf8)))
        let value = digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Double(value) / 18_446_744_073_709_551_616.0  // 2^64
    }

    /// The split of every name. `previous` holds assignments from an earlier run made with this same
    /// fraction and seed (pass an empty dictionary when the settings changed): they are kept.
    public func assign(_ names: [String], previous: [String: Split] = [:]) -> [String: Split] {
        var result: [String: Split] = [:]
        for name in names {
            if let kept = previous[name] {
                result[name] = kept
            } else {
                result[name] = fraction > 0 && unit(name) < fraction ? .validation : .train
            }
        }
        guard names.count >= 2, fraction > 0 else { return result }
        // Ordered by u, then by name, so that equal hashes (never seen in practice) still give one answer.
        let ordered = Set(names).map { (u: unit($0), name: $0) }.sorted { ($0.u, $0.name) < ($1.u, $1.name) }
        if !result.values.contains(.validation), let first = ordered.first {
            result[first.name] = .validation
        }
        if !result.values.contains(.train), let last = ordered.last {
            result[last.name] = .train
        }
        return result
    }
}
