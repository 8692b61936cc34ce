// Dynamic loss scaling for float16 training: torch.amp.GradScaler's algorithm, run on the same ATen kernels
// (`_amp_foreach_non_finite_check_and_unscale_`, `_amp_update_scale_`), so a run skips the same steps and
// moves its scale exactly as PyTorch would. The state is plain values, saved with a run's training state.
import CTorch

public struct GradScaler: Codable, Equatable, Sendable {
    /// The current scale (a float32 value, as PyTorch keeps it).
    public private(set) var scale: Double
    /// Clean steps since the last change of scale.
    public private(set) var growthTracker: Int32 = 0
    public let growthFactor: Double
    public let backoffFactor: Double
    public let growthInterval: Int

    /// PyTorch's defaults: start at 2¹⁶, halve on an overflow, double after 2000 clean steps.
    public init(initScale: Double = 65536, growthFactor: Double = 2, backoffFactor: Double = 0.5,
                growthInterval: Int = 2000) throws {
        guard initScale > 0, growthFactor > 1, backoffFactor > 0, backoffFactor < 1, growthInterval > 0 else {
            throw TorchError.invalidArgument("GradScaler needs init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 "
                + "and growth_interval > 0, got \(initScale), \(growthFactor), \(backoffFactor), \(growthInterval)")
        }
        scale = Double(Float(initScale))
        self.growthFactor = growthFactor
        self.backoffFactor = backoffFactor
        self.growthInterval = growthInterval
    }

    /// `loss × scale`, to backpropagate instead of the loss.
    public func scaled(_ loss: Tensor) throws -> Tensor { try loss * scale }

    /// Divides the parameters' gradients by the scale in place; true when any of them holds inf or NaN
    /// (the optimizer step must then be skipped).
    public func unscale(_ parameters: [Tensor]) throws -> Bool {
        // PyTorch takes the reciprocal in double precision and rounds it to float32.
        let inverse = Double(Float(1 / scale))
        var found = false
        try parameters.map(\.handle).withUnsafeBufferPointer {
            try check(ct_amp_unscale_($0.baseAddress, Int64(parameters.count), inverse, &found))
        }
        return found
    }

    /// Backs off after an overflow, grows after `growthInterval` clean steps in a row.
    public mutating func update(foundInf: Bool) throws {
        var newScale = scale, tracker = growthTracker
        try check(ct_amp_update_scale(&newScale, &tracker, foundInf, growthFactor, backoffFactor, Int64(growthInterval)))
        scale = newScale
        growthTracker = tracker
    }
}
