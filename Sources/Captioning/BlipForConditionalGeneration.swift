// Matches transformers models/blip/modeling_blip.py (5.23.0) `BlipForConditionalGeneration`: the ViT
// (`vision_model.`) and the BERT decoder with its LM head (`text_decoder.`), `forward` (logits of given
// decoder ids) and `generate` ([DEC] replaces the prompt's [CLS], the prompt's trailing [SEP] is dropped,
// decoding stops at [SEP]), loaded from a transformers folder (`config.json`, `model.safetensors`).
import Foundation
import Torch

/// A model folder is missing something or holds weights Inkwell does not read.
public struct BlipFolderError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

public final class BlipForConditionalGeneration {
    public let config: BlipConfig
    public let store: VarStore
    public let visionModel: BlipVisionModel
    public let textDecoder: BlipTextLMHeadModel

    /// Keys that transformers ties to others (`decoder.weight` to the word embeddings, `decoder.bias` to
    /// `cls.predictions.bias`) and `save_pretrained` leaves out; older exports still carry them.
    public static let tiedKeys = ["text_decoder.cls.predictions.decoder.weight", "text_decoder.cls.predictions.decoder.bias"]

    /// Registers the parameters under `vision_model.` and `text_decoder.` in `store` (uninitialised when
    /// the store was made with `initialize: false`, for loading right after).
    public init(config: BlipConfig, store: VarStore) throws {
        try config.validate()
        self.config = config
        self.store = store
        visionModel = try BlipVisionModel(store.root / "vision_model", config: config.visionConfig)
        textDecoder = try BlipTextLMHeadModel(store.root / "text_decoder", config: config.textConfig)
    }

    public convenience init(config: BlipConfig, device: Device = .cpu, dtype: DType = .float32,
                            initialize: Bool = true) throws {
        try self.init(config: config, store: VarStore(device: device, dtype: dtype, initialize: initialize))
    }

    /// `from_pretrained(folder)`: `config.json` and `model.safetensors`, loaded strictly (every missing,
    /// unexpected or mis-shaped key in one error naming the file).
    public static func load(folder: URL, device: Device = .cpu, dtype: DType = .float32) throws -> BlipForConditionalGeneration {
        let config = try BlipConfig.load(folder.appendingPathComponent("config.json"))
        let model = try BlipForConditionalGeneration(config: config, device: device, dtype: dtype, initialize: false)
        try model.loadWeights(folder.appendingPathComponent("model.safetensors"))
        return model
    }

    public func loadWeights(_ url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            let folder = url.deletingLastPathComponent()
            let present = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            var message = "no \(url.lastPathComponent)"
            if present.contains(where: { $0.hasSuffix(".safetensors.index.json") }) {
                message += "; sharded weights are not supported"
            } else if present.contains("pytorch_model.bin") {
                message += "; only PyTorch pickle weights (pytorch_model.bin) are present, and Inkwell reads safetensors only"
            }
            throw BlipFolderError(path: folder.path, message: message)
        }
        var tensors = try SafetensorsFile(url: url).tensors()
        for key in Self.tiedKeys { tensors[key] = nil }
        try store.load(tensors, strict: true, source: url.path)
    }

    // MARK: Forward

    /// Image tokens [B, patches + 1, vision width]: `vision_model(pixel_values).last_hidden_state`.
    public func imageEmbeddings(_ pixelValues: Tensor) throws -> Tensor {
        try noGrad { try visionModel(pixelValues) }
    }

    /// Decoder logits [B, L, vocab] of `inputIds` [B, L] for the images (causal over the ids), as
    /// `model(pixel_values=, input_ids=).logits`.
    public func callAsFunction(pixelValues: Tensor, inputIds: Tensor) throws -> Tensor {
        try textDecoder(inputIds, encoderHiddenStates: visionModel(pixelValues))
    }

    // MARK: Generation

    /// Caption ids [B, length] for `pixelValues` [B, 3, H, W], as `model.generate(pixel_values, input_ids,
    /// **options)`. `inputIds` are the tokenizer's ids of a text prefix (`[CLS] a tattoo of [SEP]`), one row
    /// per image or one row for all; nil starts from `[DEC]` alone. The result starts with `[DEC]` and the
    /// prefix, as transformers returns it.
    public func generate(pixelValues: Tensor, inputIds: Tensor? = nil, options: GenerationOptions = GenerationOptions()) throws -> Tensor {
        let text = config.textConfig
        guard let bos = text.bosTokenID else { throw BlipConfigError(key: "text_config.bos_token_id", "is null; generation starts from it") }
        guard let sep = text.sepTokenID else { throw BlipConfigError(key: "text_config.sep_token_id", "is null; generation stops at it") }
        guard let pad = text.padTokenID else { throw BlipConfigError(key: "text_config.pad_token_id", "is null; finished captions are padded with it") }
        guard options.numBeams >= 1 else { throw TorchError.invalidArgument("numBeams must be at least 1, got \(options.numBeams)") }
        return try noGrad {
            let image = try visionModel(pixelValues)
            let batch = image.size(0)
            let device = image.device
            // [DEC] in place of the first id, the last id ([SEP], or transformers' dummy eos) dropped.
            var prompt = try Tensor.full([batch, 1], Double(bos), dtype: .int64, device: device)
            if let inputIds {
                guard inputIds.rank == 2, inputIds.size(1) >= 2, inputIds.size(0) == batch || inputIds.size(0) == 1 else {
                    throw TorchError.invalidArgument(
                        "input ids must be [\(batch) or 1, length ≥ 2] ([CLS] … [SEP]), got \(inputIds.shape)")
                }
                let length = inputIds.size(1) - 2
                let body = try inputIds.to(device, dtype: .int64).narrow(dim: 1, start: 1, length: length)
                prompt = try Tensor.cat([prompt, body.expand([batch, length])], dim: 1)
            }
            let promptLength = prompt.size(1)
            let maxLength = options.maxNewTokens.map { promptLength + $0 }
                ?? options.maxLength ?? Swift.min(20 + promptLength, text.maxPositionEmbeddings)
            guard promptLength < maxLength else {
                throw TorchError.invalidArgument("the prompt has \(promptLength) tokens but the maximum length is \(maxLength)")
            }
            let search = BeamSearch(eos: sep, pad: pad, maxLength: maxLength, options: options)
            let beams = options.numBeams
            // `_expand_inputs_for_generation`: each image and prompt repeated once per beam, adjacently.
            let expandedImage = try repeatRows(image, beams)
            let step = decodingStep(image: expandedImage, useCache: options.useCache)
            if beams == 1 { return try search.greedy(prompt, step) }
            return try search.beamSearch(repeatRows(prompt, beams), batch: batch, step)
        }
    }

    /// Decoding from `image` tokens: with the cache, the first call reads the whole prompt and later calls
    /// only the newest token; without it every call recomputes the whole sequence.
    private func decodingStep(image: Tensor, useCache: Bool) -> DecodingStep {
        let decoder = textDecoder
        let cache = useCache ? BlipTextCache(layers: decoder.bert.layers.count) : nil
        return DecodingStep(
            logits: { sequences in
                let new = try sequences.narrow(dim: 1, start: cache?.length ?? 0, length: sequences.size(1) - (cache?.length ?? 0))
                return try decoder(new, encoderHiddenStates: image, cache: cache, lastOnly: true)
                    .select(dim: 1, index: 0).to(.float32)
            },
            reorder: { index in try cache?.reorderBeams(index) })
    }

    /// [N, ...] → [N·times, ...], each row repeated `times` times in a row (`repeat_interleave`).
    private func repeatRows(_ t: Tensor, _ times: Int) throws -> Tensor {
        guard times > 1 else { return t }
        var shape = t.shape
        shape.insert(times, at: 1)
        var flat = t.shape
        flat[0] *= times
        return try t.unsqueeze(1).expand(shape).reshape(flat)
    }
}
