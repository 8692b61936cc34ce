// Aspect-ratio buckets. The rule under test (Buckets.swift): sides are multiples of 64 within
// [max(64, R/2 rounded down to 64), 2R]; each bucket is, for its width (or, transposed, its height), the
// largest other side with area ≤ R²; R×R is always there; an image takes the bucket of nearest log aspect
// ratio, and is never enlarged past --max-upscale (a bucket of its own when it is too small).
import Foundation
import Testing
import TestSupport
@testable import Training

@Suite struct BucketTests {
    /// The largest multiple of 64 that is ≤ maxSide and makes side · x ≤ R².
    func tallest(_ side: Int, _ set: BucketSet) -> Int {
        min(set.maxSide, set.resolution * set.resolution / side / 64 * 64)
    }

    @Test func bucketSizesFollowTheStatedRule() throws {
        for resolution in [64, 128, 256, 384, 512, 768] {
            let set = try BucketSet(resolution: resolution)
            #expect(set.minSide == max(64, resolution / 2 / 64 * 64) && set.maxSide == 2 * resolution)
            #expect(set.sizes.contains(BucketSize(width: resolution, height: resolution)))
            for size in set.sizes {
                #expect(size.width % 64 == 0 && size.height % 64 == 0, "\(size) sides are multiples of 64")
                #expect(size.area <= resolution * resolution, "\(size) area ≤ \(resolution)²")
                #expect((set.minSide...set.maxSide).contains(size.width) && (set.minSide...set.maxSide).contains(size.height))
                #expect(set.sizes.contains(BucketSize(width: size.height, height: size.width)), "\(size) has its transpose")
                #expect(size.height == tallest(size.width, set) || size.width == tallest(size.height, set)
                        || (size.width == resolution && size.height == resolution), "\(size) is as large as the area allows")
            }
            // And every width in range whose tallest height fits the range has its bucket.
            for width in stride(from: set.minSide, through: set.maxSide, by: 64) where tallest(width, set) >= set.minSide {
                #expect(set.sizes.contains(BucketSize(width: width, height: tallest(width, set))))
            }
        }
        // At 512: the familiar SD 1.5 list, worked out by hand from the rule.
        let sd = try BucketSet(resolution: 512)
        for (w, h) in [(512, 512), (576, 448), (640, 384), (704, 320), (768, 320), (832, 256), (1024, 256), (448, 576), (256, 1024)] {
            #expect(sd.sizes.contains(BucketSize(width: w, height: h)), "\(w)x\(h)")
        }
        #expect(!sd.sizes.contains(BucketSize(width: 576, height: 512)), "576×512 is over 512² pixels")
        #expect(sd.sizes.count == 17)
        #expect(try BucketSet(resolution: 64).sizes == [BucketSize(width: 64, height: 64)])
        #expect(throws: DatasetError.self) { try BucketSet(resolution: 500) }
    }

    @Test func imagesGoToTheBucketOfNearestAspect() throws {
        let set = try BucketSet(resolution: 512)
        #expect(set.nearest(width: 1000, height: 1000) == BucketSize(width: 512, height: 512))
        #expect(set.nearest(width: 1000, height: 500) == BucketSize(width: 704, height: 320))   // 2.2 beats 1.67
        #expect(set.nearest(width: 500, height: 1000) == BucketSize(width: 320, height: 704))   // and mirrored
        #expect(set.nearest(width: 3000, height: 1000) == BucketSize(width: 832, height: 256))  // 3.25 beats 2.4
        #expect(set.nearest(width: 9000, height: 100) == BucketSize(width: 1024, height: 256))  // the widest there is
        // Against a brute-force search over log aspect ratios, for many shapes.
        for w in stride(from: 100, through: 4000, by: 130) {
            for h in stride(from: 100, through: 4000, by: 170) {
                let chosen = set.nearest(width: w, height: h)
                let target = log(Double(w) / Double(h))
                let best = set.sizes.map { abs(log(Double($0.width) / Double($0.height)) - target) }.min() ?? .infinity
                #expect(abs(abs(log(Double(chosen.width) / Double(chosen.height)) - target) - best) < 1e-12, "\(w)x\(h) → \(chosen)")
            }
        }
    }

    @Test func noImageIsEnlargedPastTheLimit() throws {
        let set = try BucketSet(resolution: 512)
        for limit in [1.0, 1.5, 2.0] {
            for fit in Fit.allCases {
                for w in stride(from: 40, through: 2000, by: 97) {
                    for h in stride(from: 40, through: 2000, by: 89) {
                        let factor = min(limit, (Double(512 * 512) / Double(w * h)).squareRoot())
                        guard let bucket = set.bucket(width: w, height: h, fit: fit, maxUpscale: limit) else {
                            #expect(Double(w) * factor < 64 || Double(h) * factor < 64, "\(w)x\(h) was refused but fits")
                            continue
                        }
                        let scale = FramePlan.scale(width: w, height: h, into: bucket, fit: fit)
                        #expect(scale <= limit + 1e-9, "\(w)x\(h) \(fit) enlarged \(scale)× into \(bucket), limit \(limit)")
                        #expect(bucket.width % 64 == 0 && bucket.height % 64 == 0 && bucket.area <= 512 * 512)
                        #expect(max(bucket.width, bucket.height) / min(bucket.width, bucket.height) <= 4)
                        // The plan reaches the bucket: one side exact, the other covering (crop) or inside (pad).
                        let plan = FramePlan(width: w, height: h, canvas: bucket, fit: fit)
                        let r = plan.resized
                        #expect(r.width == bucket.width || r.height == bucket.height)
                        if fit == .crop {
                            #expect(r.width >= bucket.width && r.height >= bucket.height)
                        } else {
                            #expect(r.width <= bucket.width && r.height <= bucket.height)
                        }
                    }
                }
            }
        }
        // A 300×200 image never enlarged: not its nearest bucket 640×384 but one of its own, 256×192.
        #expect(set.bucket(width: 300, height: 200, fit: .crop, maxUpscale: 1) == BucketSize(width: 256, height: 192))
        // Its nearest standard bucket, 640×384, needs 2.13×: at a limit of 2 it still gets its own (600×400 → 576×384),
        // at 3 the standard one.
        #expect(set.bucket(width: 300, height: 200, fit: .crop, maxUpscale: 2) == BucketSize(width: 576, height: 384))
        #expect(set.bucket(width: 300, height: 200, fit: .crop, maxUpscale: 3) == BucketSize(width: 640, height: 384))
        #expect(set.bucket(width: 30, height: 30, fit: .crop, maxUpscale: 2) == nil)
    }

    @Test func theSquareWithoutBucketsSkipsImagesThatWouldNeedMoreEnlargement() throws {
        let (raw, dataset) = try DatasetTest.rawCopy()
        // At 128, a 70×70 image needs 1.83×: refused at 1.5, taken at 2.
        let strict = try DatasetTest.run(DatasetTest.options(raw, dataset, resolution: 128, maxUpscale: 1.5))
        let skipped = try #require(strict.skipped.first { $0.source == "sub/nested.png" })
        #expect(skipped.reason.contains("too small") && skipped.reason.contains("--max-upscale"))
        let loose = try DatasetTest.run(DatasetTest.options(raw, dataset, resolution: 128, maxUpscale: 2))
        #expect(loose.processed.contains("sub/nested.png"))
        #expect(loose.manifest.imagesByBucket.keys.sorted { $0.width < $1.width } == [BucketSize(width: 128, height: 128)])
    }
}
