// torchmetrics functional/multimodal/clip_score.py (_clip_score_update, clip_score) and multimodal/clip_score.py
// (CLIPScore.update/compute), with image source and text target, on the CLIPModel of this module.
import Foundation
import Imaging
import StableDiffusion
import Torch

/// CLIP score of images against their prompts, as torchmetrics defines it:
///
///     per sample:  s_i = 100 · ⟨f_img / ‖f_img‖₂, f_txt / ‖f_txt‖₂⟩        (may be negative)
///     aggregate:   max(mean_i s_i, 0)                                    (clamped AFTER averaging)
///
/// torchmetrics' docstring writes `max(100 · cos, 0)` as if each sample were clamped, but its code averages
/// first (formats.md §7.1); a set mixing negative and positive samples scores lower than per-sample clamping
/// would give. Images go through `CLIPImageProcessor`; prompts are tokenized without truncation, padded to
/// the longest of the batch (attention mask 0 on padding) and then cut to `max_position_embeddings` (77),
/// which can cut off the end-of-text token of a long prompt exactly as torchmetrics does.
public final class CLIPScore {
    public let model: CLIPModel
    public let processor: CLIPImageProcessor
    public let tokenizer: CLIPTokenizer
    /// Pairs per forward pass; per-sample scores do not depend on it (beyond float rounding).
    public var batchSize: Int

    public init(model: CLIPModel, processor: CLIPImageProcessor, tokenizer: CLIPTokenizer, batchSize: Int = 32) {
        self.model = model
        self.processor = processor
        self.tokenizer = tokenizer
        self.batchSize = max(1, batchSize)
    }

    /// Loads everything from one transformers CLIP folder (e.g. a local copy of openai/clip-vit-base-patch32):
    /// `config.json`, `model.safetensors`, `preprocessor_config.json` (or transformers 5's `processor_config.json`),
    /// `tokenizer.json` or `vocab.json` + `merges.txt` (+ tokenizer configs). Errors name the missing or malformed file.
    public static func load(directory: URL, device: Device = .cpu, dtype: DType = .float32) throws -> CLIPScore {
        let model = try CLIPModel.load(directory: directory, device: device, dtype: dtype)
        let processor = try CLIPImageProcessor.load(from: directory)
        let tokenizer = try CLIPTokenizer(folder: directory)
        return CLIPScore(model: model, processor: processor, tokenizer: tokenizer)
    }

    /// Token ids and attention mask as torchmetrics gets them: `processor(text=prompts, padding=True)`
    /// (padded to the longest with the pad id), then `[..., :max_position_embeddings]`. Both [N, L] int64.
    public func tokenize(_ prompts: [String]) throws -> (ids: Tensor, attentionMask: Tensor) {
        guard !prompts.isEmpty else { throw CLIPModelError.invalidInput("no prompts to tokenize") }
        let rows = prompts.map { tokenizer.encode($0) }
        let longest = rows.map(\.count).max() ?? 0
        let length = min(longest, model.config.textConfig.maxPositionEmbeddings)
        var ids: [Int] = [], mask: [Int] = []
        ids.reserveCapacity(rows.count * length)
        mask.reserveCapacity(rows.count * length)
        for row in rows {
            let padded = row + [Int](repeating: tokenizer.padTokenId, count: longest - row.count)
            ids += padded.prefix(length)
            mask += ([Int](repeating: 1, count: row.count) + [Int](repeating: 0, count: longest - row.count)).prefix(length)
        }
        return (try Tensor(ids, shape: [rows.count, length]), try Tensor(mask, shape: [rows.count, length]))
    }

    /// Per-sample scores s_i = 100 · cos(image_i, prompt_i), NOT clamped: [N] float32 on the CPU. The cosine
    /// is taken in float32 whatever the model's dtype.
    public func scores(images: [Image], prompts: [String]) throws -> Tensor {
        guard images.count == prompts.count else {
            throw CLIPModelError.invalidInput(
                "expected the same number of images and prompts, got \(images.count) and \(prompts.count)")
        }
        guard !images.isEmpty else { throw CLIPModelError.invalidInput("no image/prompt pairs to score") }
        var pieces: [Tensor] = []
        for start in stride(from: 0, to: images.count, by: batchSize) {
            let end = min(start + batchSize, images.count)
            let piece = try noGrad { () throws -> Tensor in
                let pixels = try processor.pixelValues(Array(images[start..<end]))
                let (ids, mask) = try tokenize(Array(prompts[start..<end]))
                let image = try CLIPModel.l2Normalized(model.imageFeatures(pixels).to(.float32))
                let text = try CLIPModel.l2Normalized(model.textFeatures(ids, attentionMask: mask).to(.float32))
                return try ((image * text).sum(dims: [-1]) * 100).to(.cpu)
            }
            pieces.append(piece)
        }
        return pieces.count == 1 ? pieces[0] : try Tensor.cat(pieces)
    }

    /// torchmetrics' `clip_score(images, prompts)`: max(mean of the per-sample scores, 0).
    public func score(images: [Image], prompts: [String]) throws -> Double {
        try CLIPScore.aggregate(scores(images: images, prompts: prompts))
    }

    /// max(mean(scores), 0) — the clamp comes after the average, never per sample.
    public static func aggregate(_ scores: Tensor) throws -> Double {
        guard scores.count > 0 else { throw CLIPModelError.invalidInput("no scores to aggregate") }
        return Swift.max(try scores.to(.float64).mean().item(), 0)
    }
}

/// torchmetrics' `CLIPScore` module state: a running sum and count of per-sample scores over several
/// batches; `value` is max(sum / count, 0), the same as `CLIPScore.aggregate` over all samples at once.
public struct CLIPScoreAccumulator: Sendable, Equatable {
    public private(set) var sum = 0.0
    public private(set) var count = 0

    public init() {}

    /// Adds a batch of per-sample scores (`CLIPScore.scores`).
    public mutating func update(_ scores: Tensor) throws {
        sum += try scores.to(.float64).sum().item()
        count += scores.count
    }

    /// nil before any sample was added.
    public var value: Double? { count == 0 ? nil : Swift.max(sum / Double(count), 0) }
}
