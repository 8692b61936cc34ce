// One low-rank adapter on one layer, computed as peft's lora.Linear / lora.Conv2d forward:
// `result = base(x) + B(A(dropout(x))) · scale` with scale = alpha / rank · multiplier. The base output is
// never scaled, and with B = 0 the added term is exactly zero, so the output is bit-for-bit the base's.
import Torch

/// The layer an adapter is attached to.
public enum LoRABaseLayer {
    case linear(Linear)
    /// A 1×1 convolution (SD1.x's `proj_in`/`proj_out`); its adapter is a 1×1 down and a 1×1 up convolution.
    case conv(Conv2d)

    public var weight: Tensor {
        switch self {
        case .linear(let l): return l.weight
        case .conv(let c): return c.weight
        }
    }
    public var inFeatures: Int { weight.size(1) }
    public var outFeatures: Int { weight.size(0) }
    var isConv: Bool { if case .conv = self { return true } else { return false } }

    /// The shapes of down (A) and up (B) for `rank`: [r, in] / [out, r], or [r, in, 1, 1] / [out, r, 1, 1].
    func adapterShapes(rank: Int) -> (down: [Int], up: [Int]) {
        isConv ? ([rank, inFeatures, 1, 1], [outFeatures, rank, 1, 1]) : ([rank, inFeatures], [outFeatures, rank])
    }

    /// Wraps a registered module, or says why it cannot carry a LoRA.
    init(key: String, module: AnyObject) throws {
        if let linear = module as? Linear {
            self = .linear(linear)
        } else if let conv = module as? Conv2d {
            let k = conv.weight.shape
            guard k.count == 4, k[2] == 1, k[3] == 1 else {
                throw LoRAError.unsupportedModule(key: key, reason: "a \(k.dropFirst(2).map(String.init).joined(separator: "×")) convolution (only linear layers and 1×1 convolutions take LoRA)")
            }
            guard conv.groups == 1 else {
                throw LoRAError.unsupportedModule(key: key, reason: "a grouped convolution (groups = \(conv.groups))")
            }
            self = .conv(conv)
        } else {
            throw LoRAError.unsupportedModule(key: key, reason: "\(type(of: module)) is neither Linear nor Conv2d")
        }
    }

    func attach(_ adapter: LoRAAdapter) {
        switch self {
        case .linear(let l): l.adapters.append(adapter)
        case .conv(let c): c.adapters.append(adapter)
        }
    }

    func detach(_ adapter: LoRAAdapter) {
        switch self {
        case .linear(let l): l.adapters.removeAll { $0 === adapter }
        case .conv(let c): c.adapters.removeAll { $0 === adapter }
        }
    }
}

public final class LoRAAdapter: LayerAdapter {
    public let component: LoRAComponent
    /// The module key inside its component (`down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q`).
    public let key: String
    public let base: LoRABaseLayer
    /// A (kohya's `lora_down`): [rank, in], or [rank, in, 1, 1] on a convolution.
    public let down: Tensor
    /// B (kohya's `lora_up`): [out, rank], or [out, rank, 1, 1] on a convolution.
    public let up: Tensor
    /// Moved with the base layer when its model changes device (`VarStore.move(to:)`).
    public var tensors: [Tensor] { [down, up] }
    public let rank: Int
    public var alpha: Double
    /// The user's strength (`--lora FILE:SCALE`, peft's adapter weight).
    public var multiplier: Double = 1
    public var dropout: Double
    /// Draws dropout masks (nil: libtorch's default generator). A trainer sets its own so that a
    /// resumed run replays the same masks.
    public var dropoutGenerator: Generator?
    /// Dropout applies in training mode only.
    public var isTraining = false
    public var isEnabled = true
    /// Set while a `LoRAStack` holds this adapter's delta in the base weight (the forward then adds nothing).
    public internal(set) var isFused = false

    init(component: LoRAComponent, key: String, base: LoRABaseLayer, down: Tensor, up: Tensor, alpha: Double,
         dropout: Double) {
        self.component = component
        self.key = key
        self.base = base
        self.down = down
        self.up = up
        rank = down.size(0)
        self.alpha = alpha
        self.dropout = dropout
    }

    /// alpha / rank · multiplier, in Double as peft computes `scaling` (then its adapter weight) in Python floats.
    public var scale: Double { alpha / Double(rank) * multiplier }

    /// B(A(x)) without scale, in the adapter's dtype.
    func lowRank(_ x: Tensor) throws -> Tensor {
        switch base {
        case .linear:
            return try F.linear(F.linear(x, weight: down), weight: up)
        case .conv(let conv):
            // peft's lora_A takes the base convolution's stride and padding (1×1: nothing to pad).
            let h = try F.conv2d(x, weight: down, stride: conv.stride, padding: conv.padding, dilation: conv.dilation)
            return try F.conv2d(h, weight: up)
        }
    }

    public func adapt(_ input: Tensor, output: Tensor) throws -> Tensor {
        guard isEnabled, !isFused else { return output }
        // Half-precision bases with float32 adapters: the adapter runs in its own dtype, the sum is cast back
        // (peft's `_cast_input_dtype` and `result.to(torch_result_dtype)`).
        var x = input.dtype == down.dtype ? input : try input.to(down.dtype)
        if isTraining, dropout > 0 {
            x = try dropoutGenerator.map { try x.dropout(p: dropout, generator: $0) } ?? x.dropout(p: dropout, training: true)
        }
        let sum = try output + lowRank(x) * scale
        return sum.dtype == output.dtype ? sum : try sum.to(output.dtype)
    }

    /// ΔW = scale · B @ A in float32, shaped like the base weight (ComfyUI and peft merge this way).
    public func deltaWeight() throws -> Tensor {
        let b = try up.to(.float32).flatten(from: 1), a = try down.to(.float32).flatten(from: 1)
        return try (b.matmul(a) * scale).reshape(base.weight.shape)
    }
}
