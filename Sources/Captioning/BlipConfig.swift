// Matches transformers models/blip/configuration_blip.py (5.23.0): `BlipConfig` with its `text_config`
// (`BlipTextConfig`) and `vision_config` (`BlipVisionConfig`), decoded from config.json unchanged; a key
// that is absent takes transformers' default, so a hub config that lists only non-default values works.
import Foundation
import Torch

/// A config value that transformers rejects or Inkwell does not support, naming the file and the key.
public typealias BlipConfigError = ConfigValueError

/// transformers' `ACT2FN` for the names BLIP configs use (`hidden_act`).
public enum BlipActivation: String, Codable, Sendable {
    case gelu
    /// `gelu_new` (transformers' NewGELUActivation) and `gelu_pytorch_tanh`: the tanh approximation.
    case geluNew = "gelu_new"
    case geluPytorchTanh = "gelu_pytorch_tanh"
    case quickGelu = "quick_gelu"
    case relu
    case silu
    case swish

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        switch self {
        case .gelu: return try x.gelu()
        case .geluNew, .geluPytorchTanh: return try x.gelu(approximate: true)
        case .quickGelu: return try x.quickGelu()
        case .relu: return try x.relu()
        case .silu, .swish: return try x.silu()
        }
    }
}

/// `eos_token_id`: transformers accepts one id, a list, or null.
public struct TokenIDs: Codable, Sendable, Equatable {
    public var ids: [Int]

    public init(_ ids: [Int]) { self.ids = ids }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            ids = []
        } else if let one = try? container.decode(Int.self) {
            ids = [one]
        } else {
            ids = try container.decode([Int].self)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if ids.count == 1 { try container.encode(ids[0]) } else { try container.encode(ids) }
    }
}

/// Keys absent from a config take the defaults below; `decode(_:_:_:)` keeps that one line per key.
private extension KeyedDecodingContainer {
    func value<T: Decodable>(_ key: Key, _ fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }
    /// A key whose JSON value may be null (transformers' `int | None`).
    func optional<T: Decodable>(_ key: Key, _ fallback: T?) throws -> T? {
        contains(key) ? try decodeIfPresent(T.self, forKey: key) : fallback
    }
}

/// `BlipVisionConfig`: the ViT image encoder.
public struct BlipVisionConfig: Codable, Sendable, Equatable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var projectionDim = 512
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    /// One side of the square input image; transformers' arithmetic (`image_size // patch_size`) needs an int.
    public var imageSize = 384
    public var patchSize = 16
    public var hiddenAct = BlipActivation.gelu
    public var layerNormEps = 1e-5
    public var attentionDropout = 0.0
    public var initializerRange = 1e-10

    public init() {}

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", projectionDim = "projection_dim"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case imageSize = "image_size", patchSize = "patch_size", hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps", attentionDropout = "attention_dropout"
        case initializerRange = "initializer_range"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = BlipVisionConfig()
        hiddenSize = try c.value(.hiddenSize, d.hiddenSize)
        intermediateSize = try c.value(.intermediateSize, d.intermediateSize)
        projectionDim = try c.value(.projectionDim, d.projectionDim)
        numHiddenLayers = try c.value(.numHiddenLayers, d.numHiddenLayers)
        numAttentionHeads = try c.value(.numAttentionHeads, d.numAttentionHeads)
        imageSize = try c.value(.imageSize, d.imageSize)
        patchSize = try c.value(.patchSize, d.patchSize)
        hiddenAct = try c.value(.hiddenAct, d.hiddenAct)
        layerNormEps = try c.value(.layerNormEps, d.layerNormEps)
        attentionDropout = try c.value(.attentionDropout, d.attentionDropout)
        initializerRange = try c.value(.initializerRange, d.initializerRange)
    }

    /// Patches per side; the model sees `numPatches + 1` tokens (the class token first).
    public var patchesPerSide: Int { imageSize / patchSize }
    public var numPositions: Int { patchesPerSide * patchesPerSide + 1 }

    func validate() throws {
        guard numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
            throw BlipConfigError(key: "vision_config.num_attention_heads",
                                  "hidden_size \(hiddenSize) is not divisible by \(numAttentionHeads) heads")
        }
        guard patchSize > 0, imageSize >= patchSize else {
            throw BlipConfigError(key: "vision_config.patch_size", "\(patchSize) does not fit image_size \(imageSize)")
        }
    }
}

/// `BlipTextConfig`: the BERT text decoder with cross-attention to the image tokens.
public struct BlipTextConfig: Codable, Sendable, Equatable {
    public var vocabSize = 30524
    public var hiddenSize = 768
    /// Width of the image tokens the cross-attention reads; `BlipConfig` sets it to the vision width.
    public var encoderHiddenSize = 768
    public var intermediateSize = 3072
    public var projectionDim = 768
    public var numHiddenLayers = 12
    public var numAttentionHeads = 8
    public var maxPositionEmbeddings = 512
    public var hiddenAct = BlipActivation.gelu
    public var layerNormEps = 1e-12
    public var hiddenDropoutProb = 0.0
    public var attentionProbsDropoutProb = 0.0
    public var initializerRange = 0.02
    /// `[DEC]` (30522 in BLIP): replaces `[CLS]` as the first decoder token.
    public var bosTokenID: Int? = 30522
    /// Unused by captioning: `generate` stops at `sep_token_id` instead.
    public var eosTokenID: TokenIDs? = TokenIDs([2])
    public var padTokenID: Int? = 0
    /// `[SEP]`: the end of a caption.
    public var sepTokenID: Int? = 102
    public var isDecoder = true
    public var useCache = true
    public var tieWordEmbeddings = true
    public var labelSmoothing = 0.0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", encoderHiddenSize = "encoder_hidden_size"
        case intermediateSize = "intermediate_size", projectionDim = "projection_dim"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps", hiddenDropoutProb = "hidden_dropout_prob"
        case attentionProbsDropoutProb = "attention_probs_dropout_prob", initializerRange = "initializer_range"
        case bosTokenID = "bos_token_id", eosTokenID = "eos_token_id", padTokenID = "pad_token_id"
        case sepTokenID = "sep_token_id", isDecoder = "is_decoder", useCache = "use_cache"
        case tieWordEmbeddings = "tie_word_embeddings", labelSmoothing = "label_smoothing"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = BlipTextConfig()
        vocabSize = try c.value(.vocabSize, d.vocabSize)
        hiddenSize = try c.value(.hiddenSize, d.hiddenSize)
        encoderHiddenSize = try c.value(.encoderHiddenSize, d.encoderHiddenSize)
        intermediateSize = try c.value(.intermediateSize, d.intermediateSize)
        projectionDim = try c.value(.projectionDim, d.projectionDim)
        numHiddenLayers = try c.value(.numHiddenLayers, d.numHiddenLayers)
        numAttentionHeads = try c.value(.numAttentionHeads, d.numAttentionHeads)
        maxPositionEmbeddings = try c.value(.maxPositionEmbeddings, d.maxPositionEmbeddings)
        hiddenAct = try c.value(.hiddenAct, d.hiddenAct)
        layerNormEps = try c.value(.layerNormEps, d.layerNormEps)
        hiddenDropoutProb = try c.value(.hiddenDropoutProb, d.hiddenDropoutProb)
        attentionProbsDropoutProb = try c.value(.attentionProbsDropoutProb, d.attentionProbsDropoutProb)
        initializerRange = try c.value(.initializerRange, d.initializerRange)
        bosTokenID = try c.optional(.bosTokenID, d.bosTokenID)
        eosTokenID = try c.optional(.eosTokenID, d.eosTokenID)
        padTokenID = try c.optional(.padTokenID, d.padTokenID)
        sepTokenID = try c.optional(.sepTokenID, d.sepTokenID)
        isDecoder = try c.value(.isDecoder, d.isDecoder)
        useCache = try c.value(.useCache, d.useCache)
        tieWordEmbeddings = try c.value(.tieWordEmbeddings, d.tieWordEmbeddings)
        labelSmoothing = try c.value(.labelSmoothing, d.labelSmoothing)
    }

    public var headDim: Int { hiddenSize / numAttentionHeads }

    func validate() throws {
        guard numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
            throw BlipConfigError(key: "text_config.num_attention_heads",
                                  "hidden_size \(hiddenSize) is not divisible by \(numAttentionHeads) heads")
        }
        // Without cross-attention layers the model is a text encoder, not the captioning decoder.
        guard isDecoder else {
            throw BlipConfigError(key: "text_config.is_decoder", "is false; the captioning decoder needs true")
        }
        guard tieWordEmbeddings else {
            throw BlipConfigError(key: "text_config.tie_word_embeddings",
                                  "is false; Inkwell supports only the LM head tied to the word embeddings")
        }
        for (key, id) in [("bos_token_id", bosTokenID), ("pad_token_id", padTokenID), ("sep_token_id", sepTokenID)] {
            if let id, !(0..<vocabSize).contains(id) {
                throw BlipConfigError(key: "text_config.\(key)", "\(id) is outside the vocabulary (0..<\(vocabSize))")
            }
        }
    }
}

/// `BlipConfig` of `BlipForConditionalGeneration`.
public struct BlipConfig: Codable, Sendable, Equatable {
    public var textConfig = BlipTextConfig()
    public var visionConfig = BlipVisionConfig()
    public var projectionDim = 512
    public var logitScaleInitValue = 2.6592
    public var imageTextHiddenSize = 256
    public var labelSmoothing = 0.0
    public var tieWordEmbeddings = true
    public var initializerFactor = 1.0
    public var initializerRange = 0.02

    /// Applies transformers' `__post_init__`: the cross-attention reads image tokens of the vision width,
    /// whatever `text_config.encoder_hidden_size` says.
    public init(textConfig: BlipTextConfig = BlipTextConfig(), visionConfig: BlipVisionConfig = BlipVisionConfig()) {
        self.textConfig = textConfig
        self.visionConfig = visionConfig
        self.textConfig.encoderHiddenSize = visionConfig.hiddenSize
    }

    enum CodingKeys: String, CodingKey {
        case textConfig = "text_config", visionConfig = "vision_config", projectionDim = "projection_dim"
        case logitScaleInitValue = "logit_scale_init_value", imageTextHiddenSize = "image_text_hidden_size"
        case labelSmoothing = "label_smoothing", tieWordEmbeddings = "tie_word_embeddings"
        case initializerFactor = "initializer_factor", initializerRange = "initializer_range"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = BlipConfig()
        // `text_config: null` means the defaults, as in transformers.
        textConfig = try c.value(.textConfig, d.textConfig)
        visionConfig = try c.value(.visionConfig, d.visionConfig)
        projectionDim = try c.value(.projectionDim, d.projectionDim)
        logitScaleInitValue = try c.value(.logitScaleInitValue, d.logitScaleInitValue)
        imageTextHiddenSize = try c.value(.imageTextHiddenSize, d.imageTextHiddenSize)
        labelSmoothing = try c.value(.labelSmoothing, d.labelSmoothing)
        tieWordEmbeddings = try c.value(.tieWordEmbeddings, d.tieWordEmbeddings)
        initializerFactor = try c.value(.initializerFactor, d.initializerFactor)
        initializerRange = try c.value(.initializerRange, d.initializerRange)
        textConfig.encoderHiddenSize = visionConfig.hiddenSize
    }

    /// Decodes config.json; errors name the file and the key.
    public static func load(_ url: URL) throws -> BlipConfig {
        let config: BlipConfig = try decodeJSONFile(url)
        do {
            try config.validate()
        } catch var error as BlipConfigError {
            error.file = url.path
            throw error
        }
        return config
    }

    public func validate() throws {
        try visionConfig.validate()
        try textConfig.validate()
        guard tieWordEmbeddings else {
            throw BlipConfigError(key: "tie_word_embeddings",
                                  "is false; Inkwell supports only the LM head tied to the word embeddings")
        }
    }
}

/// Reads and decodes a JSON file, turning every failure into a `BlipConfigError` naming the file and key.
func decodeJSONFile<T: Decodable>(_ url: URL, as type: T.Type = T.self) throws -> T {
    guard let data = FileManager.default.contents(atPath: url.path) else {
        throw BlipConfigError(file: url.path, key: "(file)", "cannot be read (missing or not a file)")
    }
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let error as DecodingError {
        func key(_ path: [CodingKey]) -> String {
            let k = path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return k.isEmpty ? "(file)" : k
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            throw BlipConfigError(file: url.path, key: key(context.codingPath), context.debugDescription)
        case .keyNotFound(let missing, let context):
            throw BlipConfigError(file: url.path, key: key(context.codingPath + [missing]), "is required")
        case .dataCorrupted(let context):
            throw BlipConfigError(file: url.path, key: key(context.codingPath),
                                  "unreadable: \(context.debugDescription)")
        @unknown default:
            throw BlipConfigError(file: url.path, key: "(file)", "\(error)")
        }
    }
}
