import Testing
import Torch
@testable import DeviceCheck

@Suite struct SelfCheckTests {
    /// The demo's training run must learn: validation loss (fixed data and noise) falls by half.
    @Test func validationLossFalls() throws {
        let history = try SelfCheck.run(steps: 60, batch: 8, size: 24, width: 16, seed: 3, device: .cpu, every: 30)
        let first = try #require(history.first?.validationLoss)
        let last = try #require(history.last?.validationLoss)
        #expect(last < 0.5 * first, "validation loss \(first) → \(last)")
        #expect(history.map(\.step) == [0, 30, 60])
    }

    @Test func lineArtIsBlackInkOnWhite() throws {
        let images = try SelfCheck.lineArt(batch: 4, size: 32, generator: try Generator(seed: 1), device: .cpu)
        #expect(images.shape == [4, 1, 32, 32])
        let values = Set(try images.toArray(Float.self))
        #expect(values == [-1, 1])
        let inkFraction = try images.lt(0).to(.float32).mean().item()
        #expect(inkFraction > 0.02 && inkFraction < 0.5)
    }
}
