// Matches diffusers models/unets/unet_2d_condition.py `UNet2DConditionModel` (its config and forward) for
// the SD1.x/SD2.x block types: CrossAttnDownBlock2D/DownBlock2D, UNetMidBlock2DCrossAttn,
// CrossAttnUpBlock2D/UpBlock2D, positional time embedding, no class/addition embeddings.
import Foundation
import Torch

/// `unet/config.json`, decoded unchanged: every key of diffusers' `UNet2DConditionModel.__init__`, absent
/// keys taking diffusers' defaults. Values Inkwell does not implement are rejected by `validate()`.
public struct UNet2DConditionConfig: Codable, Sendable, Equatable {
    public var sampleSize: SampleSize?
    public var inChannels = 4
    public var outChannels = 4
    public var centerInputSample = false
    public var flipSinToCos = true
    public var freqShift: Double = 0
    public var downBlockTypes = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
    public var midBlockType: String? = "UNetMidBlock2DCrossAttn"
    public var upBlockTypes = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
    public var onlyCrossAttention: PerBlock<Bool> = false
    public var blockOutChannels = [320, 640, 1280, 1280]
    public var layersPerBlock: PerBlock<Int> = 2
    public var downsamplePadding = 1
    public var midBlockScaleFactor: Double = 1
    public var dropout: Double = 0
    public var actFn = "silu"
    public var normNumGroups: Int? = 32
    public var normEps: Double = 1e-5
    public var crossAttentionDim: PerBlock<Int> = 1280
    public var transformerLayersPerBlock: PerBlock<Int> = 1
    public var reverseTransformerLayersPerBlock: [[Int]]?
    public var encoderHidDim: Int?
    public var encoderHidDimType: String?
    /// The JSON key `attention_head_dim`, which in these UNets is the number of attention heads per block,
    /// not their width: diffusers misnamed it when the library was created and keeps the name for the
    /// tens of thousands of configs that use it (`num_attention_heads = num_attention_heads or
    /// attention_head_dim` in unet_2d_condition.py). SD1.5's 8 means 8 heads of width 40/80/160.
    public var attentionHeads: PerBlock<Int> = 8
    /// The correctly named key, which diffusers refuses for this model (see `attentionHeads`).
    public var numAttentionHeads: PerBlock<Int>?
    public var dualCrossAttention = false
    public var useLinearProjection = false
    public var classEmbedType: String?
    public var additionEmbedType: String?
    public var additionTimeEmbedDim: Int?
    public var numClassEmbeds: Int?
    public var upcastAttention = false
    public var resnetTimeScaleShift = "default"
    /// Read by other block types only; SD1.x's blocks ignore it, as in diffusers.
    public var resnetSkipTimeAct = false
    /// Read by other block types only; SD1.x's blocks ignore it, as in diffusers.
    public var resnetOutScaleFactor: Double = 1
    public var timeEmbeddingType = "positional"
    public var timeEmbeddingDim: Int?
    public var timeEmbeddingActFn: String?
    public var timestepPostAct: String?
    public var timeCondProjDim: Int?
    public var convInKernel = 3
    public var convOutKernel = 3
    public var projectionClassEmbeddingsInputDim: Int?
    public var attentionType = "default"
    public var classEmbeddingsConcat = false
    public var midBlockOnlyCrossAttention: Bool?
    public var crossAttentionNorm: String?
    public var additionEmbedTypeNumHeads = 64

    public init() {}

    enum CodingKeys: String, CodingKey {
        case sampleSize = "sample_size", inChannels = "in_channels", outChannels = "out_channels"
        case centerInputSample = "center_input_sample", flipSinToCos = "flip_sin_to_cos", freqShift = "freq_shift"
        case downBlockTypes = "down_block_types", midBlockType = "mid_block_type", upBlockTypes = "up_block_types"
        case onlyCrossAttention = "only_cross_attention", blockOutChannels = "block_out_channels"
        case layersPerBlock = "layers_per_block", downsamplePadding = "downsample_padding"
        case midBlockScaleFactor = "mid_block_scale_factor", dropout, actFn = "act_fn"
        case normNumGroups = "norm_num_groups", normEps = "norm_eps", crossAttentionDim = "cross_attention_dim"
        case transformerLayersPerBlock = "transformer_layers_per_block"
        case reverseTransformerLayersPerBlock = "reverse_transformer_layers_per_block"
        case encoderHidDim = "encoder_hid_dim", encoderHidDimType = "encoder_hid_dim_type"
        case attentionHeads = "attention_head_dim", numAttentionHeads = "num_attention_heads"
        case dualCrossAttention = "dual_cross_attention", useLinearProjection = "use_linear_projection"
        case classEmbedType = "class_embed_type", additionEmbedType = "addition_embed_type"
        case additionTimeEmbedDim = "addition_time_embed_dim", numClassEmbeds = "num_class_embeds"
        case upcastAttention = "upcast_attention", resnetTimeScaleShift = "resnet_time_scale_shift"
        case resnetSkipTimeAct = "resnet_skip_time_act", resnetOutScaleFactor = "resnet_out_scale_factor"
        case timeEmbeddingType = "time_embedding_type", timeEmbeddingDim = "time_embedding_dim"
        case timeEmbeddingActFn = "time_embedding_act_fn", timestepPostAct = "timestep_post_act"
        case timeCondProjDim = "time_cond_proj_dim", convInKernel = "conv_in_kernel", convOutKernel = "conv_out_kernel"
        case projectionClassEmbeddingsInputDim = "projection_class_embeddings_input_dim"
        case attentionType = "attention_type", classEmbeddingsConcat = "class_embeddings_concat"
        case midBlockOnlyCrossAttention = "mid_block_only_cross_attention", crossAttentionNorm = "cross_attention_norm"
        case additionEmbedTypeNumHeads = "addition_embed_type_num_heads"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        // Keys whose default is not nil but where an explicit null means something (no norm, no mid block).
        func nullable<T: Decodable>(_ key: CodingKeys, _ fallback: T?) throws -> T? {
            guard c.contains(key) else { return fallback }
            return try c.decodeNil(forKey: key) ? nil : c.decode(T.self, forKey: key)
        }
        let d = UNet2DConditionConfig()
        sampleSize = try c.decodeIfPresent(SampleSize.self, forKey: .sampleSize)
        inChannels = try value(.inChannels, d.inChannels)
        outChannels = try value(.outChannels, d.outChannels)
        centerInputSample = try value(.centerInputSample, d.centerInputSample)
        flipSinToCos = try value(.flipSinToCos, d.flipSinToCos)
        freqShift = try value(.freqShift, d.freqShift)
        downBlockTypes = try value(.downBlockTypes, d.downBlockTypes)
        midBlockType = try nullable(.midBlockType, d.midBlockType)
        upBlockTypes = try value(.upBlockTypes, d.upBlockTypes)
        onlyCrossAttention = try value(.onlyCrossAttention, d.onlyCrossAttention)
        blockOutChannels = try value(.blockOutChannels, d.blockOutChannels)
        layersPerBlock = try value(.layersPerBlock, d.layersPerBlock)
        downsamplePadding = try value(.downsamplePadding, d.downsamplePadding)
        midBlockScaleFactor = try value(.midBlockScaleFactor, d.midBlockScaleFactor)
        dropout = try value(.dropout, d.dropout)
        actFn = try value(.actFn, d.actFn)
        normNumGroups = try nullable(.normNumGroups, d.normNumGroups)
        normEps = try value(.normEps, d.normEps)
        crossAttentionDim = try value(.crossAttentionDim, d.crossAttentionDim)
        transformerLayersPerBlock = try value(.transformerLayersPerBlock, d.transformerLayersPerBlock)
        reverseTransformerLayersPerBlock = try c.decodeIfPresent([[Int]].self, forKey: .reverseTransformerLayersPerBlock)
        encoderHidDim = try c.decodeIfPresent(Int.self, forKey: .encoderHidDim)
        encoderHidDimType = try c.decodeIfPresent(String.self, forKey: .encoderHidDimType)
        attentionHeads = try value(.attentionHeads, d.attentionHeads)
        numAttentionHeads = try c.decodeIfPresent(PerBlock<Int>.self, forKey: .numAttentionHeads)
        dualCrossAttention = try value(.dualCrossAttention, d.dualCrossAttention)
        useLinearProjection = try value(.useLinearProjection, d.useLinearProjection)
        classEmbedType = try c.decodeIfPresent(String.self, forKey: .classEmbedType)
        additionEmbedType = try c.decodeIfPresent(String.self, forKey: .additionEmbedType)
        additionTimeEmbedDim = try c.decodeIfPresent(Int.self, forKey: .additionTimeEmbedDim)
        numClassEmbeds = try c.decodeIfPresent(Int.self, forKey: .numClassEmbeds)
        upcastAttention = try value(.upcastAttention, d.upcastAttention)
        resnetTimeScaleShift = try value(.resnetTimeScaleShift, d.resnetTimeScaleShift)
        resnetSkipTimeAct = try value(.resnetSkipTimeAct, d.resnetSkipTimeAct)
        resnetOutScaleFactor = try value(.resnetOutScaleFactor, d.resnetOutScaleFactor)
        timeEmbeddingType = try value(.timeEmbeddingType, d.timeEmbeddingType)
        timeEmbeddingDim = try c.decodeIfPresent(Int.self, forKey: .timeEmbeddingDim)
        timeEmbeddingActFn = try c.decodeIfPresent(String.self, forKey: .timeEmbeddingActFn)
        timestepPostAct = try c.decodeIfPresent(String.self, forKey: .timestepPostAct)
        timeCondProjDim = try c.decodeIfPresent(Int.self, forKey: .timeCondProjDim)
        convInKernel = try value(.convInKernel, d.convInKernel)
        convOutKernel = try value(.convOutKernel, d.convOutKernel)
        projectionClassEmbeddingsInputDim = try c.decodeIfPresent(Int.self, forKey: .projectionClassEmbeddingsInputDim)
        attentionType = try value(.attentionType, d.attentionType)
        classEmbeddingsConcat = try value(.classEmbeddingsConcat, d.classEmbeddingsConcat)
        midBlockOnlyCrossAttention = try c.decodeIfPresent(Bool.self, forKey: .midBlockOnlyCrossAttention)
        crossAttentionNorm = try c.decodeIfPresent(String.self, forKey: .crossAttentionNorm)
        additionEmbedTypeNumHeads = try value(.additionEmbedTypeNumHeads, d.additionEmbedTypeNumHeads)
    }

    /// The resolved per-block values, in down-block order.
    public struct Blocks: Sendable, Equatable {
        public var layers: [Int]
        public var heads: [Int]
        public var crossAttentionDim: [Int]
        public var transformerLayers: [Int]
        public var onlyCrossAttention: [Bool]
    }

    /// Checks every key against what this implementation supports and returns the per-block values;
    /// errors name the offending key.
    @discardableResult
    public func validate() throws -> Blocks {
        func reject(_ key: CodingKeys, _ message: String) -> DiffusersConfigError {
            DiffusersConfigError(key: key.rawValue, message)
        }
        let n = downBlockTypes.count
        guard n > 0 else { throw reject(.downBlockTypes, "is empty") }
        guard upBlockTypes.count == n else { throw reject(.upBlockTypes, "has \(upBlockTypes.count) entries, down_block_types has \(n)") }
        guard blockOutChannels.count == n else {
            throw reject(.blockOutChannels, "has \(blockOutChannels.count) entries, down_block_types has \(n)")
        }
        for type in downBlockTypes where !["CrossAttnDownBlock2D", "DownBlock2D"].contains(Self.blockName(type)) {
            throw reject(.downBlockTypes, "\"\(type)\" is not supported (CrossAttnDownBlock2D, DownBlock2D)")
        }
        for type in upBlockTypes where !["CrossAttnUpBlock2D", "UpBlock2D"].contains(Self.blockName(type)) {
            throw reject(.upBlockTypes, "\"\(type)\" is not supported (CrossAttnUpBlock2D, UpBlock2D)")
        }
        guard midBlockType == "UNetMidBlock2DCrossAttn" else {
            throw reject(.midBlockType, "\(midBlockType.map { "\"\($0)\"" } ?? "null") is not supported (UNetMidBlock2DCrossAttn)")
        }
        guard numAttentionHeads == nil else {
            throw reject(.numAttentionHeads, "must be absent: diffusers reads the head count from attention_head_dim")
        }
        guard timeEmbeddingType == "positional" else { throw reject(.timeEmbeddingType, "\"\(timeEmbeddingType)\" is not supported (positional)") }
        guard classEmbedType == nil else { throw reject(.classEmbedType, "class embeddings are not supported") }
        guard numClassEmbeds == nil else { throw reject(.numClassEmbeds, "class embeddings are not supported") }
        guard !classEmbeddingsConcat else { throw reject(.classEmbeddingsConcat, "class embeddings are not supported") }
        guard additionEmbedType == nil else { throw reject(.additionEmbedType, "addition embeddings are not supported") }
        guard encoderHidDimType == nil else { throw reject(.encoderHidDimType, "encoder projections are not supported") }
        guard encoderHidDim == nil else { throw reject(.encoderHidDim, "encoder projections are not supported") }
        guard timeCondProjDim == nil else { throw reject(.timeCondProjDim, "timestep conditioning is not supported") }
        guard !dualCrossAttention else { throw reject(.dualCrossAttention, "dual cross-attention is not supported") }
        guard attentionType == "default" else { throw reject(.attentionType, "\"\(attentionType)\" is not supported (default)") }
        guard crossAttentionNorm == nil else { throw reject(.crossAttentionNorm, "cross-attention norms are not supported") }
        guard resnetTimeScaleShift == "default" else {
            throw reject(.resnetTimeScaleShift, "\"\(resnetTimeScaleShift)\" is not supported (default)")
        }
        guard dropout == 0 else { throw reject(.dropout, "\(dropout) is not supported (0)") }
        guard normNumGroups != nil else { throw reject(.normNumGroups, "null (no output norm) is not supported") }
        guard reverseTransformerLayersPerBlock == nil else {
            throw reject(.reverseTransformerLayersPerBlock, "asymmetric transformer depths are not supported")
        }
        for (key, k) in [(CodingKeys.convInKernel, convInKernel), (.convOutKernel, convOutKernel)] where k < 1 || k % 2 == 0 {
            throw reject(key, "\(k) is not a positive odd kernel size")
        }
        _ = try DiffusersActivation(name: actFn, key: CodingKeys.actFn.rawValue)
        _ = try timeEmbeddingActFn.map { try DiffusersActivation(name: $0, key: CodingKeys.timeEmbeddingActFn.rawValue) }
        _ = try timestepPostAct.map { try DiffusersActivation(name: $0, key: CodingKeys.timestepPostAct.rawValue) }
        let blocks = Blocks(
            layers: try layersPerBlock.values(count: n, key: CodingKeys.layersPerBlock.rawValue),
            heads: try attentionHeads.values(count: n, key: CodingKeys.attentionHeads.rawValue),
            crossAttentionDim: try crossAttentionDim.values(count: n, key: CodingKeys.crossAttentionDim.rawValue),
            transformerLayers: try transformerLayersPerBlock.values(count: n, key: CodingKeys.transformerLayersPerBlock.rawValue),
            onlyCrossAttention: try onlyCrossAttention.values(count: n, key: CodingKeys.onlyCrossAttention.rawValue))
        // Down block i and up block n-1-i have the same width and head count; the mid block uses the last.
        for (channels, heads) in zip(blockOutChannels, blocks.heads) where heads < 1 || channels % heads != 0 {
            throw reject(.attentionHeads, "\(heads) heads do not divide \(channels) channels")
        }
        return blocks
    }

    /// diffusers strips a "UNetRes" prefix from block type names.
    static func blockName(_ type: String) -> String {
        type.hasPrefix("UNetRes") ? String(type.dropFirst(7)) : type
    }
}

/// The conditional UNet: predicts the noise (or v) in `sample` at `timestep` given text embeddings.
public final class UNet2DConditionModel {
    public let config: UNet2DConditionConfig
    /// Where the parameters live, under the keys of diffusers' state dict.
    public let store: VarStore
    public let convIn: Conv2d
    public let timeProj: Timesteps
    public let timeEmbedding: TimestepEmbedding
    public let timeEmbedActivation: DiffusersActivation?
    public let downBlocks: [any UNetDownBlock]
    public let midBlock: UNetMidBlock2DCrossAttn
    public let upBlocks: [any UNetUpBlock]
    public let convNormOut: GroupNorm
    public let convActivation: DiffusersActivation
    public let convOut: Conv2d

    public init(_ path: VarPath, config: UNet2DConditionConfig) throws {
        let blocks = try config.validate()
        self.config = config
        store = path.store
        let channels = config.blockOutChannels
        let n = channels.count
        let activation = try DiffusersActivation(name: config.actFn, key: "act_fn")
        let groups = config.normNumGroups ?? 32

        convIn = try Conv2d(path / "conv_in", inChannels: config.inChannels, outChannels: channels[0],
                            kernelSize: config.convInKernel, padding: (config.convInKernel - 1) / 2)
        let timeEmbedDim = config.timeEmbeddingDim ?? channels[0] * 4
        timeProj = try Timesteps(channels: channels[0], flipSinToCos: config.flipSinToCos,
                                 downscaleFreqShift: config.freqShift, device: store.device)
        timeEmbedding = try TimestepEmbedding(
            path / "time_embedding", inChannels: channels[0], timeEmbedDim: timeEmbedDim, activation: activation,
            postActivation: try config.timestepPostAct.map { try DiffusersActivation(name: $0, key: "timestep_post_act") })
        timeEmbedActivation = try config.timeEmbeddingActFn.map { try DiffusersActivation(name: $0, key: "time_embedding_act_fn") }

        func resnets(outputScale: Double = 1) -> ResnetSettings {
            ResnetSettings(tembChannels: timeEmbedDim, eps: config.normEps, groups: groups, activation: activation,
                           outputScaleFactor: outputScale)
        }
        func transformer(_ i: Int, onlyCrossAttention: Bool) -> TransformerSettings {
            TransformerSettings(heads: blocks.heads[i], crossAttentionDim: blocks.crossAttentionDim[i],
                                layers: blocks.transformerLayers[i], useLinearProjection: config.useLinearProjection,
                                onlyCrossAttention: onlyCrossAttention, upcastAttention: config.upcastAttention)
        }

        var down: [any UNetDownBlock] = []
        for (i, type) in config.downBlockTypes.enumerated() {
            let p = path / "down_blocks" / i
            let (inC, outC, last) = (i == 0 ? channels[0] : channels[i - 1], channels[i], i == n - 1)
            if UNet2DConditionConfig.blockName(type) == "CrossAttnDownBlock2D" {
                down.append(try CrossAttnDownBlock2D(p, inChannels: inC, outChannels: outC, layers: blocks.layers[i],
                                                     resnet: resnets(), transformer: transformer(i, onlyCrossAttention: blocks.onlyCrossAttention[i]),
                                                     addDownsample: !last, downsamplePadding: config.downsamplePadding))
            } else {
                down.append(try DownBlock2D(p, inChannels: inC, outChannels: outC, layers: blocks.layers[i],
                                            resnet: resnets(), addDownsample: !last,
                                            downsamplePadding: config.downsamplePadding))
            }
        }
        downBlocks = down

        midBlock = try UNetMidBlock2DCrossAttn(path / "mid_block", channels: channels[n - 1],
                                               resnet: resnets(outputScale: config.midBlockScaleFactor),
                                               // UNetMidBlock2DCrossAttn takes no only_cross_attention.
                                               transformer: transformer(n - 1, onlyCrossAttention: false))

        // The up path mirrors the down path: block i uses the settings of down block n-1-i (diffusers
        // reverses heads, layers, cross-attention widths, transformer depths and only_cross_attention).
        var up: [any UNetUpBlock] = []
        for (i, type) in config.upBlockTypes.enumerated() {
            let p = path / "up_blocks" / i
            let mirror = n - 1 - i
            let prevC = channels[min(mirror + 1, n - 1)]
            let (outC, inC, last) = (channels[mirror], channels[max(mirror - 1, 0)], i == n - 1)
            let layers = blocks.layers[mirror] + 1
            if UNet2DConditionConfig.blockName(type) == "CrossAttnUpBlock2D" {
                up.append(try CrossAttnUpBlock2D(p, inChannels: inC, outChannels: outC, prevOutputChannels: prevC,
                                                 layers: layers, resnet: resnets(),
                                                 transformer: transformer(mirror, onlyCrossAttention: blocks.onlyCrossAttention[mirror]),
                                                 addUpsample: !last))
            } else {
                up.append(try UpBlock2D(p, inChannels: inC, outChannels: outC, prevOutputChannels: prevC, layers: layers,
                                        resnet: resnets(), addUpsample: !last))
            }
        }
        upBlocks = up

        convNormOut = try GroupNorm(path / "conv_norm_out", groups: groups, channels: channels[0], eps: config.normEps)
        convActivation = activation
        convOut = try Conv2d(path / "conv_out", inChannels: channels[0], outChannels: config.outChannels,
                             kernelSize: config.convOutKernel, padding: (config.convOutKernel - 1) / 2)
    }

    /// Builds the model from a diffusers `unet/` folder: `config.json` and
    /// `diffusion_pytorch_model[.variant].safetensors`, loaded strictly (one error lists every missing,
    /// unexpected or mis-shaped key and names the file). Weights are converted to `dtype` on `device`.
    public static func load(folder: URL, variant: String? = nil, device: Device = .cpu,
                            dtype: DType = .float32) throws -> UNet2DConditionModel {
        let dir = DiffusersModelFolder(folder)
        let config = try dir.config(UNet2DConditionConfig.self, className: "UNet2DConditionModel") { try $0.validate() }
        let (store, file) = try dir.boundedStore(device: device, dtype: dtype, variant: variant)
        let model = try UNet2DConditionModel(store.root, config: config)
        try dir.load(file, into: store)
        return model
    }

    /// Every attention module (`attn1`, `attn2` of each transformer block), in module order.
    public var attentions: [Attention] {
        transformers.flatMap { $0.transformerBlocks.flatMap { [$0.attn1, $0.attn2] } }
    }

    private var transformers: [Transformer2DModel] {
        Array(downBlocks.compactMap { ($0 as? CrossAttnDownBlock2D)?.attentions }.joined()
            + midBlock.attentions + upBlocks.compactMap { ($0 as? CrossAttnUpBlock2D)?.attentions }.joined())
    }

    /// diffusers' `enable_gradient_checkpointing()` (set) and `disable_gradient_checkpointing()` (nil): the
    /// modules diffusers checkpoints (each down/up block's resnets, the mid block's resnets after the first, each
    /// `BasicTransformerBlock`) run under `checkpoint` while grad is enabled. The rest (conv_in, time embedding,
    /// norms and projections around the transformer blocks, samplers, conv_out) keeps its activations, as there.
    public var gradientCheckpointing: GradientCheckpointing? {
        get { midBlock.gradientCheckpointing }
        set {
            for block in downBlocks { block.gradientCheckpointing = newValue }
            midBlock.gradientCheckpointing = newValue
            for block in upBlocks { block.gradientCheckpointing = newValue }
            for transformer in transformers { transformer.gradientCheckpointing = newValue }
        }
    }

    /// `sample`: [B, in_channels, H, W]; `timestep`: 0-d or [B] (or [1]) tensor, integer or float;
    /// `encoderHiddenStates`: [B, S, cross_attention_dim]. Returns [B, out_channels, H, W].
    public func callAsFunction(_ sample: Tensor, timestep: Tensor, encoderHiddenStates: Tensor) throws -> Tensor {
        let dims = sample.shape
        guard dims.count == 4, dims[1] == config.inChannels else {
            throw TorchError.invalidArgument("UNet sample must be [B, \(config.inChannels), H, W], got \(dims)")
        }
        guard encoderHiddenStates.rank == 3 else {
            throw TorchError.invalidArgument("encoder hidden states must be [B, S, D], got \(encoderHiddenStates.shape)")
        }
        // Sizes that are not a multiple of the total downsampling need explicit upsampling sizes.
        let factor = 1 << upBlocks.filter { $0.upsampler != nil }.count
        let forwardUpsampleSize = dims[2] % factor != 0 || dims[3] % factor != 0

        var x = config.centerInputSample ? try 2 * sample - 1 : sample
        // 1. Time: diffusers broadcasts the timesteps over the batch, embeds them in float32, then casts.
        var t = timestep.rank == 0 ? try timestep.unsqueeze(0) : timestep
        if t.device != sample.device { t = try t.to(sample.device) }
        var emb = try timeEmbedding(timeProj(t.expand([dims[0]])).to(sample.dtype))
        if let timeEmbedActivation { emb = try timeEmbedActivation(emb) }

        // 2. Down, keeping every skip connection.
        x = try convIn(x)
        var skips = [x]
        for block in downBlocks {
            let (h, residuals) = try block(x, temb: emb, encoderHiddenStates: encoderHiddenStates)
            x = h
            skips += residuals
        }
        // 3. Mid.
        x = try midBlock(x, temb: emb, encoderHiddenStates: encoderHiddenStates)
        // 4. Up, each block taking its skip connections off the end.
        for (i, block) in upBlocks.enumerated() {
            let count = block.resnets.count
            guard skips.count >= count else {
                throw TorchError.invalidArgument("up block \(i) needs \(count) skip connections, \(skips.count) left")
            }
            let mine = skips[(skips.count - count)...]
            skips.removeLast(count)
            var size: (Int, Int)?
            if forwardUpsampleSize, i < upBlocks.count - 1, let next = skips.last {
                size = (next.size(2), next.size(3))
            }
            x = try block(x, skips: mine, temb: emb, encoderHiddenStates: encoderHiddenStates, upsampleSize: size)
        }
        // 5. Out.
        return try convOut(convActivation(convNormOut(x)))
    }

    /// A timestep given as a number, as diffusers accepts a Python float (made a float64 tensor).
    public func callAsFunction(_ sample: Tensor, timestep: Double, encoderHiddenStates: Tensor) throws -> Tensor {
        try self(sample, timestep: Tensor(scalar: timestep), encoderHiddenStates: encoderHiddenStates)
    }
}
