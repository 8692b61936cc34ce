// Near-duplicate detection: a 64-bit DCT perceptual hash (the pHash idea) and a Hamming-distance test.
//
// Why DCT and not a difference hash: line art is mostly blank paper, and a difference hash sets no bits
// where neighbouring pixels are equal, so two unrelated sparse drawings hash alike. The DCT hash keeps
// the 8×8 lowest spatial frequencies of a 32×32 grey thumbnail — where the ink mass sits — and sets a bit
// for each coefficient above their median, so about half the bits are set for any image. A re-saved JPEG,
// a slightly shifted scan or a resized copy stays within a few bits; different drawings differ in ~32.
//
//   grey (Pillow's L) → 32×32 (Pillow-exact box filter) → D · X · Dᵀ (orthonormal DCT-II) →
//   the top-left 8×8 coefficients, row-major, without [0][0] (the mean brightness, which says nothing
//   about the drawing) → bit i = coefficient > median of those 63 → 63 bits in a UInt64, MSB first.
import Foundation
import Imaging
import Torch

public struct PerceptualHash: Hashable, Sendable, CustomStringConvertible {
    public let bits: UInt64

    public init(bits: UInt64) { self.bits = bits }

    /// Parses the 16 hex digits that `description` writes (as stored in the manifest).
    public init?(hex: String) {
        guard hex.count == 16, let value = UInt64(hex, radix: 16) else { return nil }
        bits = value
    }

    public var description: String {
        let hex = String(bits, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    public func distance(to other: PerceptualHash) -> Int { (bits ^ other.bits).nonzeroBitCount }

    /// Hashes at this distance or closer are reported as near duplicates (out of 63 bits).
    public static let defaultThreshold = 6

    static let side = 32
    static let kept = 8

    /// The hash of an image (any mode; alpha should already be flattened by the caller).
    public init(_ image: Image) throws {
        try self.init(thumbnail: try image.gray().resized(width: Self.side, height: Self.side, filter: .box))
    }

    /// What makes the thumbnail of a decode from its grey rows as they arrive (so a large image is hashed
    /// without being held whole), upright and over the part that holds the file's pixels: append the bands'
    /// `image.gray()`, then `init(thumbnail:)`.
    public static func thumbnailResizer(for band: ImageBand) throws -> RowResizer {
        try RowResizer(band: band, channels: 1, width: side, height: side, filter: .box)
    }

    /// The hash of the 32×32 grey thumbnail.
    init(thumbnail: Image) throws {
        guard thumbnail.width == Self.side, thumbnail.height == Self.side, thumbnail.channels == 1 else {
            throw DatasetError("a perceptual-hash thumbnail is 32×32 grey, got \(thumbnail.width)×\(thumbnail.height)×\(thumbnail.channels)")
        }
        let x = try thumbnail.hwcTensor().to(.float64).view([Self.side, Self.side])
        let d = try Self.dctMatrix()
        let coefficients = try d.matmul(x).matmul(d.transpose(0, 1))
            .narrow(dim: 0, start: 0, length: Self.kept).narrow(dim: 1, start: 0, length: Self.kept)
        let values = Array(try coefficients.contiguous().toArray(Double.self).dropFirst())
        let sorted = values.sorted()
        let median = sorted[sorted.count / 2]
        var bits: UInt64 = 0
        for value in values { bits = bits << 1 | (value > median ? 1 : 0) }
        self.bits = bits
    }

    /// Orthonormal DCT-II: D[k][n] = c(k) · cos(π (2n + 1) k / 2N), c(0) = √(1/N), c(k) = √(2/N).
    static func dctMatrix() throws -> Tensor {
        let n = side
        var values = [Double](repeating: 0, count: n * n)
        for k in 0..<n {
            let c = k == 0 ? (1 / Double(n)).squareRoot() : (2 / Double(n)).squareRoot()
            for i in 0..<n { values[k * n + i] = c * cos(Double.pi * Double(2 * i + 1) * Double(k) / Double(2 * n)) }
        }
        return try Tensor(values, shape: [n, n])
    }
}

/// Two images whose hashes are within the threshold.
public struct NearDuplicate: Codable, Equatable, Sendable {
    /// Source paths, the earlier in sort order first.
    public var first: String
    public var second: String
    public var distance: Int
}

extension PerceptualHash {
    /// Every pair of named hashes within `threshold`, sorted by distance, then names. Pairwise, which is
    /// instant for datasets of thousands of images.
    public static func nearDuplicates(_ hashes: [(name: String, hash: PerceptualHash)], threshold: Int) -> [NearDuplicate] {
        let items = hashes.sorted { $0.name < $1.name }
        var pairs: [NearDuplicate] = []
        for i in items.indices {
            for j in items.indices where j > i {
                let distance = items[i].hash.distance(to: items[j].hash)
                if distance <= threshold {
                    pairs.append(NearDuplicate(first: items[i].name, second: items[j].name, distance: distance))
                }
            }
        }
        return pairs.sorted { ($0.distance, $0.first, $0.second) < ($1.distance, $1.first, $1.second) }
    }
}
