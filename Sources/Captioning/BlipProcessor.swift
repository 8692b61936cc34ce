// Matches transformers models/blip/processing_blip.py `BlipProcessor` (5.23.0): the image processor and the
// BERT tokenizer of a BLIP folder, and the captioning loop around them that transformers' model card
// describes: `processor(images, text)` → `model.generate(**inputs)` → `processor.decode(ids,
// skip_special_tokens=True)`. `BlipCaptioner` is the Captioning module's entry point: RGB image tensors to
// caption strings through `BlipImageProcessor`, `BlipForConditionalGeneration` (`BlipVisionModel` +
// `BlipTextLMHeadModel`, greedy or beam search in BeamSearch.swift) and `BertTokenizer`.
import Foundation
import Torch

public struct BlipProcessor: Sendable {
    public let imageProcessor: BlipImageProcessor
    public let tokenizer: BertTokenizer

    public init(imageProcessor: BlipImageProcessor, tokenizer: BertTokenizer) {
        self.imageProcessor = imageProcessor
        self.tokenizer = tokenizer
    }

    /// The image settings of `preprocessor_config.json` (the Hub's BLIP), else those nested under
    /// `image_processor` in `processor_config.json` (what transformers 5 saves), else the defaults; and the
    /// tokenizer files of `folder`.
    public init(folder: URL) throws {
        let config = folder.appendingPathComponent("preprocessor_config.json")
        let processorConfig = folder.appendingPathComponent("processor_config.json")
        if FileManager.default.fileExists(atPath: config.path) {
            imageProcessor = try BlipImageProcessor(configFile: config)
        } else if FileManager.default.fileExists(atPath: processorConfig.path) {
            imageProcessor = try BlipImageProcessor(processorConfigFile: processorConfig)
        } else {
            imageProcessor = BlipImageProcessor()
        }
        tokenizer = try BertTokenizer(folder: folder)
    }

    /// `processor(text=prefix).input_ids` as an int64 tensor [1, L]: `[CLS] prefix [SEP]`.
    public func inputIds(_ prefix: String) throws -> Tensor {
        let ids = tokenizer.encode(prefix)
        return try Tensor(ids.map(Int64.init), shape: [1, ids.count])
    }

    /// `processor.decode(row, skip_special_tokens=True)` for each row of `ids` [B, L].
    public func decode(_ ids: Tensor) throws -> [String] {
        let rows = try ids.to(.int64).toArray(Int64.self)
        let length = ids.rank == 2 ? ids.size(1) : rows.count
        guard length > 0 else { return Array(repeating: "", count: ids.rank == 2 ? ids.size(0) : 1) }
        return stride(from: 0, to: rows.count, by: length).map { start in
            tokenizer.decode(rows[start..<(start + length)].map(Int.init), skipSpecialTokens: true)
        }
    }
}

/// A BLIP captioning model with its processor: images in, captions out.
public final class BlipCaptioner {
    public let model: BlipForConditionalGeneration
    public let processor: BlipProcessor

    public init(model: BlipForConditionalGeneration, processor: BlipProcessor) {
        self.model = model
        self.processor = processor
    }

    /// A transformers folder such as `Salesforce/blip-image-captioning-large`'s: config.json,
    /// model.safetensors, vocab.txt, tokenizer_config.json, special_tokens_map.json, preprocessor_config.json.
    public convenience init(folder: URL, device: Device = .cpu, dtype: DType = .float32) throws {
        try self.init(model: BlipForConditionalGeneration.load(folder: folder, device: device, dtype: dtype),
                      processor: BlipProcessor(folder: folder))
    }

    /// Captions for RGB `images` [B, 3, H, W] in [0, 1], optionally continuing `prefix` (which the caption
    /// then starts with, as transformers returns it).
    public func caption(_ images: Tensor, prefix: String? = nil, options: GenerationOptions = GenerationOptions()) throws -> [String] {
        let store = model.store
        let pixels = try processor.imageProcessor(images.to(store.device)).to(store.dtype)
        let ids = try prefix.map { try processor.inputIds($0) }
        return try processor.decode(model.generate(pixelValues: pixels, inputIds: ids, options: options))
    }
}
