// Bounds a model's construction by the weights file it is about to load: a config that describes a larger
// model than the file holds (`"layers_per_block": 1000000000`, channels in the millions) is refused at the
// first parameter past the file, before that parameter is allocated, instead of growing to all RAM first.
import Foundation

public struct WeightsBudget: Sendable {
    /// The weights file, and the config that describes the model (named in the error).
    public let weights: String
    public let config: String?
    public let maxKeys: Int
    public let maxElements: Int

    /// Room for buffers a model registers that files may leave out (CLIP's `position_ids`).
    static let slackKeys = 16
    static let slackElements = 1 << 20

    /// The file's tensor count and value count (from its header: nothing is read), plus the slack.
    public init(file: SafetensorsFile, config: String? = nil) {
        weights = file.path
        self.config = config
        maxKeys = file.entries.count + Self.slackKeys
        // Bytes, not values: the header was checked against the data size, and a byte count bounds a value count.
        maxElements = file.entries.values.reduce(Self.slackElements) { $0 + ($1.end - $1.start) }
    }

    /// The values registered after adding `shape` at `key`; throws when the shape overflows or, with a
    /// budget, when the model would outgrow the file.
    static func admit(key: String, shape: [Int], after registered: Int, keyCount: Int,
                      budget: WeightsBudget?) throws -> Int {
        var count = 1
        for side in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: side)
            guard side >= 0, !overflow else {
                throw budget.map { ModelOutgrowsWeights(budget: $0, key: key, shape: shape) }
                    ?? TorchError.invalidArgument("parameter '\(key)': shape \(shape) is not a valid size")
            }
            count = product
        }
        let (total, overflow) = registered.addingReportingOverflow(count)
        if let budget, overflow || total > budget.maxElements || keyCount + 1 > budget.maxKeys {
            throw ModelOutgrowsWeights(budget: budget, key: key, shape: shape)
        }
        return total
    }
}

/// A config that describes a larger model than its weights file: names both files and the parameter.
public struct ModelOutgrowsWeights: Error, CustomStringConvertible {
    public let budget: WeightsBudget
    public let key: String
    public let shape: [Int]

    public var description: String {
        """
        \(budget.config ?? budget.weights) describes a model larger than \(budget.weights) holds: parameter \
        \(key) \(shape) goes past the file's \(budget.maxKeys - WeightsBudget.slackKeys) tensors. The config does \
        not match the weights; check its sizes (layers_per_block, block_out_channels, num_hidden_layers, …).
        """
    }
}
