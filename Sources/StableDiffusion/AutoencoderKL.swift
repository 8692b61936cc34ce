// Matches diffusers models/autoencoders/autoencoder_kl.py `AutoencoderKL` (encode → posterior, decode,
// config) and modeling_utils.py `_fix_state_dict_keys_on_load` (legacy attention key names).
import Foundation
import Torch

/// `vae/config.json`, decoded unchanged; absent keys take `AutoencoderKL.__init__`'s defaults. SD1.5's hub
/// file has no `scaling_factor`, so it gets 0.18215.
public struct AutoencoderKLConfig: Codable, Sendable, Equatable {
    public var inChannels = 3
    public var outChannels = 3
    public var downBlockTypes = ["DownEncoderBlock2D"]
    public var upBlockTypes = ["UpDecoderBlock2D"]
    public var blockOutChannels = [64]
    public var layersPerBlock = 1
    public var actFn = "silu"
    public var latentChannels = 4
    public var normNumGroups = 32
    public var sampleSize: SampleSize = .square(32)
    /// Latents are `scalingFactor · (z − shiftFactor)` for the UNet and divided back before decoding.
    public var scalingFactor = 0.18215
    public var shiftFactor: Double?
    public var latentsMean: [Double]?
    public var latentsStd: [Double]?
    /// The pipeline runs this VAE in float32 even when the rest is float16 (SD1.5's overflows in fp16).
    public var forceUpcast = true
    public var useQuantConv = true
    public var usePostQuantConv = true
    public var midBlockAddAttention = true

    public init() {}

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", downBlockTypes = "down_block_types"
        case upBlockTypes = "up_block_types", blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
        case actFn = "act_fn", latentChannels = "latent_channels", normNumGroups = "norm_num_groups"
        case sampleSize = "sample_size", scalingFactor = "scaling_factor", shiftFactor = "shift_factor"
        case latentsMean = "latents_mean", latentsStd = "latents_std", forceUpcast = "force_upcast"
        case useQuantConv = "use_quant_conv", usePostQuantConv = "use_post_quant_conv"
        case midBlockAddAttention = "mid_block_add_attention"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        let d = AutoencoderKLConfig()
        inChannels = try value(.inChannels, d.inChannels)
        outChannels = try value(.outChannels, d.outChannels)
        downBlockTypes = try value(.downBlockTypes, d.downBlockTypes)
        upBlockTypes = try value(.upBlockTypes, d.upBlockTypes)
        blockOutChannels = try value(.blockOutChannels, d.blockOutChannels)
        layersPerBlock = try value(.layersPerBlock, d.layersPerBlock)
        actFn = try value(.actFn, d.actFn)
        latentChannels = try value(.latentChannels, d.latentChannels)
        normNumGroups = try value(.normNumGroups, d.normNumGroups)
        sampleSize = try value(.sampleSize, d.sampleSize)
        scalingFactor = try value(.scalingFactor, d.scalingFactor)
        shiftFactor = try c.decodeIfPresent(Double.self, forKey: .shiftFactor)
        latentsMean = try c.decodeIfPresent([Double].self, forKey: .latentsMean)
        latentsStd = try c.decodeIfPresent([Double].self, forKey: .latentsStd)
        forceUpcast = try value(.forceUpcast, d.forceUpcast)
        useQuantConv = try value(.useQuantConv, d.useQuantConv)
        usePostQuantConv = try value(.usePostQuantConv, d.usePostQuantConv)
        midBlockAddAttention = try value(.midBlockAddAttention, d.midBlockAddAttention)
    }

    /// Rejects what this implementation does not build; errors name the key.
    public func validate() throws {
        func reject(_ key: CodingKeys, _ message: String) -> DiffusersConfigError {
            DiffusersConfigError(key: key.rawValue, message)
        }
        let n = blockOutChannels.count
        guard n > 0 else { throw reject(.blockOutChannels, "is empty") }
        guard downBlockTypes.count == n else { throw reject(.downBlockTypes, "has \(downBlockTypes.count) entries, block_out_channels has \(n)") }
        guard upBlockTypes.count == n else { throw reject(.upBlockTypes, "has \(upBlockTypes.count) entries, block_out_channels has \(n)") }
        for type in downBlockTypes where type != "DownEncoderBlock2D" {
            throw reject(.downBlockTypes, "\"\(type)\" is not supported (DownEncoderBlock2D)")
        }
        for type in upBlockTypes where type != "UpDecoderBlock2D" {
            throw reject(.upBlockTypes, "\"\(type)\" is not supported (UpDecoderBlock2D)")
        }
        guard layersPerBlock > 0 else { throw reject(.layersPerBlock, "must be positive") }
        for c in blockOutChannels where normNumGroups < 1 || c % normNumGroups != 0 {
            throw reject(.normNumGroups, "\(normNumGroups) groups do not divide \(c) channels")
        }
        _ = try DiffusersActivation(name: actFn, key: CodingKeys.actFn.rawValue)
    }
}

/// The KL autoencoder that maps images in [−1, 1] to latents (8× smaller for SD1.x) and back.
public final class AutoencoderKL {
    public let config: AutoencoderKLConfig
    public let store: VarStore
    public let encoder: Encoder
    public let decoder: Decoder
    public let quantConv: Conv2d?
    public let postQuantConv: Conv2d?

    public var scalingFactor: Double { config.scalingFactor }

    /// diffusers' `enable_tiling()`: `encode`/`decode` split inputs larger than one tile into overlapping tiles
    /// and blend them (see AutoencoderKL+Tiling.swift), so memory stays flat for large images and batches.
    public var useTiling = false
    /// `tile_sample_min_size` (the config's `sample_size`, its height for a [height, width] one) and
    /// `tile_latent_min_size` (that over the VAE's downsampling factor), as diffusers sets them.
    public var tileSampleMinSize: Int
    public var tileLatentMinSize: Int
    /// `tile_overlap_factor`: neighbouring tiles share this fraction of a tile.
    public var tileOverlapFactor = 0.25

    public init(_ path: VarPath, config: AutoencoderKLConfig) throws {
        try config.validate()
        self.config = config
        store = path.store
        let activation = try DiffusersActivation(name: config.actFn, key: "act_fn")
        encoder = try Encoder(path / "encoder", inChannels: config.inChannels, latentChannels: config.latentChannels,
                              blockOutChannels: config.blockOutChannels, layersPerBlock: config.layersPerBlock,
                              normNumGroups: config.normNumGroups, activation: activation,
                              midBlockAddAttention: config.midBlockAddAttention)
        decoder = try Decoder(path / "decoder", latentChannels: config.latentChannels, outChannels: config.outChannels,
                              blockOutChannels: config.blockOutChannels, layersPerBlock: config.layersPerBlock,
                              normNumGroups: config.normNumGroups, activation: activation,
                              midBlockAddAttention: config.midBlockAddAttention)
        tileSampleMinSize = config.sampleSize.height
        tileLatentMinSize = Int(Double(config.sampleSize.height) / Double(1 << (config.blockOutChannels.count - 1)))
        let latent = config.latentChannels
        quantConv = config.useQuantConv
            ? try Conv2d(path / "quant_conv", inChannels: 2 * latent, outChannels: 2 * latent, kernelSize: 1) : nil
        postQuantConv = config.usePostQuantConv
            ? try Conv2d(path / "post_quant_conv", inChannels: latent, outChannels: latent, kernelSize: 1) : nil
    }

    /// Builds the model from a diffusers `vae/` folder (`config.json` +
    /// `diffusion_pytorch_model[.variant].safetensors`), loaded strictly; legacy attention key names
    /// (`query`/`key`/`value`/`proj_attn`, as in SD1.5's hub VAE) are renamed first.
    public static func load(folder: URL, variant: String? = nil, device: Device = .cpu,
                            dtype: DType = .float32) throws -> AutoencoderKL {
        let dir = DiffusersModelFolder(folder)
        let config = try dir.config(AutoencoderKLConfig.self, className: "AutoencoderKL") { try $0.validate() }
        let (store, file) = try dir.boundedStore(device: device, dtype: dtype, variant: variant)
        let model = try AutoencoderKL(store.root, config: config)
        try dir.load(file, into: store, rename: renamingLegacyAttentionKeys)
        return model
    }

    /// `images`: [B, in_channels, H, W] in [−1, 1]. Returns the posterior over latents [B, latent, H/f, W/f].
    /// With `useTiling`, an image wider or taller than `tileSampleMinSize` is encoded in tiles (`_tiled_encode`).
    public func encode(_ images: Tensor) throws -> DiagonalGaussianDistribution {
        if useTiling, images.rank == 4, images.size(-1) > tileSampleMinSize || images.size(-2) > tileSampleMinSize {
            return try DiagonalGaussianDistribution(tiledEncodeMoments(images))
        }
        return try DiagonalGaussianDistribution(encodeMoments(images))
    }

    /// encoder → quant_conv: the posterior's parameters for one (tile of an) image batch.
    func encodeMoments(_ images: Tensor) throws -> Tensor {
        let h = try encoder(images)
        return try quantConv.map { try $0(h) } ?? h
    }

    /// `latents`: unscaled (already divided by `scalingFactor`). Returns images, roughly in [−1, 1].
    /// With `useTiling`, latents wider or taller than `tileLatentMinSize` are decoded in tiles (`tiled_decode`).
    public func decode(_ latents: Tensor) throws -> Tensor {
        if useTiling, latents.rank == 4, latents.size(-1) > tileLatentMinSize || latents.size(-2) > tileLatentMinSize {
            return try tiledDecode(latents)
        }
        return try decodeTile(latents)
    }

    /// post_quant_conv → decoder.
    func decodeTile(_ latents: Tensor) throws -> Tensor {
        try decoder(postQuantConv.map { try $0(latents) } ?? latents)
    }

    /// diffusers ≤0.13 saved the VAE mid-block attention as `query`, `key`, `value`, `proj_attn`; today's
    /// keys are `to_q`, `to_k`, `to_v`, `to_out.0`. Renames those keys (under `mid_block.attentions.N`),
    /// leaving every other key as it is.
    public static func renamingLegacyAttentionKeys(_ state: [String: Tensor]) -> [String: Tensor] {
        let names = ["query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"]
        var renamed: [String: Tensor] = [:]
        renamed.reserveCapacity(state.count)
        for (key, tensor) in state {
            var parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            let n = parts.count
            if n >= 5, ["weight", "bias"].contains(parts[n - 1]), let new = names[parts[n - 2]],
               Int(parts[n - 3]) != nil, parts[n - 4] == "attentions", parts[n - 5] == "mid_block" {
                parts[n - 2] = new
                renamed[parts.joined(separator: ".")] = tensor
            } else if renamed[key] == nil {
                // A legacy key wins over a new-style duplicate, as diffusers' rename overwrites.
                renamed[key] = tensor
            }
        }
        return renamed
    }
}
