// Weights holding NaN or ±Inf make every output NaN, which ends as an all-black image or a NaN loss far from
// the cause. Loads check each tensor with one sum (a read of the weights, no copy), then isfinite where it is not.
import Foundation

/// Tensors of a weights file holding NaN or ±Inf, by name.
public struct NonFiniteWeights: Error, CustomStringConvertible {
    public let source: String
    public let keys: [String]

    public var description: String {
        let shown = keys.prefix(10).joined(separator: ", ") + (keys.count > 10 ? ", … (\(keys.count) in all)" : "")
        return "\(source): NaN or infinite values in \(keys.count == 1 ? "tensor" : "tensors") \(shown); "
            + "the file is damaged or was saved from a diverged run: use another file"
    }

    /// Throws when any floating-point tensor of `tensors` holds a non-finite value; `source` names the file.
    public static func check(_ tensors: [String: Tensor], source: String) throws {
        var bad: [String] = []
        for (key, tensor) in tensors where tensor.dtype.isFloatingPoint && tensor.count > 0 {
            // A NaN or ±Inf anywhere makes the sum non-finite, and a sum reads the tensor once without the bool
            // copy `isfinite` makes; only a non-finite sum (which a huge but finite tensor can also give) is
            // checked value by value.
            if try tensor.sum().item().isFinite { continue }
            if try !tensor.isfinite().all() { bad.append(key) }
        }
        if !bad.isEmpty { throw NonFiniteWeights(source: source, keys: bad.sorted()) }
    }
}
