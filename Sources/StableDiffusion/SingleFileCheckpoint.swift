// Single-file LDM checkpoints (`v1-5-pruned-emaonly.safetensors`): converted once, at load, into the
// diffusers state dicts of the UNet, VAE and text encoder. Matches diffusers'
// loaders/single_file_utils.py (`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint`,
// `convert_ldm_clip_checkpoint`).
import Foundation
import Torch
import TorchPickle

public struct SingleFileCheckpoint {
    /// Diffusers-named state dicts, ready for the strict loaders.
    public var unet: [String: Tensor] = [:]
    public var vae: [String: Tensor] = [:]
    public var textEncoder: [String: Tensor] = [:]
    /// Keys that carry no weights of these models (noise-schedule buffers, EMA copies, position ids).
    public var ignored: [String] = []
    /// Keys this converter does not know; they make the load fail with their names listed.
    public var unknown: [String] = []

    static let unetPrefix = "model.diffusion_model."
    static let vaePrefixes = ["first_stage_model.", "vae."]
    static let textPrefixes = ["cond_stage_model.transformer.", "conditioner.embedders.0.transformer."]
    /// LDM's DDPM buffers, stored beside the weights in SD1.x checkpoints.
    static let scheduleBuffers: Set<String> = [
        "alphas_cumprod", "alphas_cumprod_prev", "betas", "log_one_minus_alphas_cumprod",
        "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2", "posterior_variance",
        "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
        "sqrt_recipm1_alphas_cumprod", "logvar", "model_ema.decay", "model_ema.num_updates",
    ]

    /// Splits and renames an LDM state dict. `unetLayersPerBlock` is the UNet config's
    /// `layers_per_block` (2 for SD1.x), which fixes how LDM's flat block indices map to blocks.
    public init(ldm state: [String: Tensor], unetLayersPerBlock: Int = 2, vaeBlockCount: Int = 4) throws {
        for (key, tensor) in state {
            if Self.scheduleBuffers.contains(key) || key.hasPrefix("model_ema.") || key.hasSuffix("position_ids") {
                ignored.append(key)
            } else if key.hasPrefix(Self.unetPrefix) {
                let name = String(key.dropFirst(Self.unetPrefix.count))
                if let d = Self.unetKey(name, layersPerBlock: unetLayersPerBlock) { unet[d] = tensor } else { unknown.append(key) }
            } else if let prefix = Self.vaePrefixes.first(where: key.hasPrefix) {
                let name = String(key.dropFirst(prefix.count))
                guard let d = Self.vaeKey(name, blockCount: vaeBlockCount) else { unknown.append(key); continue }
                // LDM's VAE attention projections are 1×1 convolutions; diffusers' are linear layers.
                let isProjection = d.contains("mid_block.attentions.0.to_") && d.hasSuffix(".weight")
                vae[d] = isProjection && tensor.rank > 2 ? try tensor.reshape(Array(tensor.shape.prefix(2))) : tensor
            } else if let prefix = Self.textPrefixes.first(where: key.hasPrefix) {
                var name = String(key.dropFirst(prefix.count))
                // Very old checkpoints lack the `text_model.` level.
                if !name.hasPrefix("text_model.") { name = "text_model." + name }
                textEncoder[name] = tensor
            } else {
                unknown.append(key)
            }
        }
        ignored.sort()
        unknown.sort()
    }

    /// Reads a single-file checkpoint: `.safetensors`, or a pickled `.ckpt`/`.pt` through TorchPickle's
    /// restricted reader (tensors only; any code in the pickle is refused by name, never run).
    public init(url: URL, unetLayersPerBlock: Int = 2, vaeBlockCount: Int = 4) throws {
        let tensors: [String: Tensor]
        do {
            try Self.refusePickle(url)
            tensors = try SafetensorsFile(url: url).tensors()
        } catch is PickleRefused {
            tensors = try TorchCheckpoint.stateDict(url)
        }
        try NonFiniteWeights.check(tensors, source: url.path)
        try self.init(ldm: tensors, unetLayersPerBlock: unetLayersPerBlock, vaeBlockCount: vaeBlockCount)
    }

    /// Whether a safetensors file looks like an SD1.x single-file checkpoint (diffusers' detection key).
    public static func isLDMCheckpoint(_ file: SafetensorsFile) -> Bool {
        file.entries.keys.contains { $0.hasPrefix(unetPrefix) }
    }

    public typealias PickleRefused = Torch.PickleRefused

    public static func refusePickle(_ url: URL) throws { try PickledCheckpoint.refuse(url) }

    // MARK: UNet

    static let resnetRenames = [
        ("in_layers.0", "norm1"), ("in_layers.2", "conv1"), ("out_layers.0", "norm2"), ("out_layers.3", "conv2"),
        ("emb_layers.1", "time_emb_proj"), ("skip_connection", "conv_shortcut"),
    ]
    static let unetTopLevel = [
        "time_embed.0": "time_embedding.linear_1", "time_embed.2": "time_embedding.linear_2",
        "input_blocks.0.0": "conv_in", "out.0": "conv_norm_out", "out.2": "conv_out",
    ]

    static func renamedResnet(_ rest: String) -> String {
        for (old, new) in resnetRenames where rest.hasPrefix(old + ".") {
            return new + rest.dropFirst(old.count)
        }
        return rest
    }

    /// The diffusers key of an LDM UNet key (without `model.diffusion_model.`), nil if unknown.
    public static func unetKey(_ key: String, layersPerBlock: Int) -> String? {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        for (ldm, diffusers) in unetTopLevel where key.hasPrefix(ldm + ".") {
            return diffusers + key.dropFirst(ldm.count)
        }
        if parts.count >= 3, parts[0] == "middle_block", let i = Int(parts[1]) {
            let tail = parts[2...].joined(separator: ".")
            if i == 1 { return "mid_block.attentions.0.\(tail)" }
            if i == 0 || i == 2 { return "mid_block.resnets.\(i / 2).\(renamedResnet(tail))" }
            return nil
        }
        let stride = layersPerBlock + 1
        guard parts.count >= 4, let i = Int(parts[1]), let j = Int(parts[2]) else { return nil }
        let rest = parts[3...].joined(separator: ".")
        switch parts[0] {
        case "input_blocks" where i >= 1:
            let block = (i - 1) / stride, layer = (i - 1) % stride
            if j == 0 && rest.hasPrefix("op.") { return "down_blocks.\(block).downsamplers.0.conv." + rest.dropFirst(3) }
            if j == 0 { return "down_blocks.\(block).resnets.\(layer).\(renamedResnet(rest))" }
            if j == 1 { return "down_blocks.\(block).attentions.\(layer).\(rest)" }
        case "output_blocks":
            let block = i / stride, layer = i % stride
            if j == 0 { return "up_blocks.\(block).resnets.\(layer).\(renamedResnet(rest))" }
            if (j == 1 || j == 2) && rest.hasPrefix("conv.") { return "up_blocks.\(block).upsamplers.0.\(rest)" }
            if j == 1 { return "up_blocks.\(block).attentions.\(layer).\(rest)" }
        default: break
        }
        return nil
    }

    // MARK: VAE

    static let vaeAttentionRenames = [
        ("norm.", "group_norm."), ("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."), ("proj_out.", "to_out.0."),
    ]

    /// The diffusers key of an LDM VAE key (without `first_stage_model.`), nil if unknown.
    static func vaeKey(_ key: String, blockCount: Int) -> String? {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 2, ["quant_conv", "post_quant_conv"].contains(parts[0]) { return key }
        guard parts.count >= 3, parts[0] == "encoder" || parts[0] == "decoder" else { return nil }
        let side = parts[0]
        let rest = parts[1...].joined(separator: ".")
        if ["conv_in.", "conv_out."].contains(where: rest.hasPrefix) { return key }
        if rest.hasPrefix("norm_out.") { return "\(side).conv_norm_out." + rest.dropFirst("norm_out.".count) }
        func resnet(_ tail: String) -> String {
            tail.hasPrefix("nin_shortcut.") ? "conv_shortcut." + tail.dropFirst("nin_shortcut.".count) : tail
        }
        if parts[1] == "mid", parts.count >= 4 {
            let tail = parts[3...].joined(separator: ".")
            switch parts[2] {
            case "block_1": return "\(side).mid_block.resnets.0.\(resnet(tail))"
            case "block_2": return "\(side).mid_block.resnets.1.\(resnet(tail))"
            case "attn_1":
                for (old, new) in vaeAttentionRenames where tail.hasPrefix(old) {
                    return "\(side).mid_block.attentions.0.\(new)\(tail.dropFirst(old.count))"
                }
                return nil
            default: return nil
            }
        }
        guard parts.count >= 5, let i = Int(parts[2]) else { return nil }
        let tail = parts[4...].joined(separator: ".")
        switch (side, parts[1], parts[3]) {
        case ("encoder", "down", "block"):
            guard let j = Int(parts[4]), parts.count >= 6 else { return nil }
            return "encoder.down_blocks.\(i).resnets.\(j).\(resnet(parts[5...].joined(separator: ".")))"
        case ("encoder", "down", "downsample"):
            return "encoder.down_blocks.\(i).downsamplers.0.\(tail)"
        case ("decoder", "up", "block"):
            // LDM numbers decoder levels from the lowest resolution up; diffusers from the top down.
            guard let j = Int(parts[4]), parts.count >= 6 else { return nil }
            return "decoder.up_blocks.\(blockCount - 1 - i).resnets.\(j).\(resnet(parts[5...].joined(separator: ".")))"
        case ("decoder", "up", "upsample"):
            return "decoder.up_blocks.\(blockCount - 1 - i).upsamplers.0.\(tail)"
        default:
            return nil
        }
    }
}
