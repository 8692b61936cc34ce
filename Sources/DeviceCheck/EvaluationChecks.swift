// BLIP captions and CLIP score on the device against the CPU, on tiny random models of both.
import Captioning
import Evaluation
import Foundation
import Imaging
import StableDiffusion
import Torch
import Training

extension DeviceLane {
    /// A CLIP score on `device` over a tiny random CLIP (ViT-B/32 layout at 32 px width) and the lane
    /// model's tokenizer; the same weights on every device.
    func clipScorer(on device: Device) throws -> CLIPScore {
        let tokenizer = try CLIPTokenizer(folder: try modelFolder.appendingPathComponent("tokenizer"))
        var text = CLIPTextConfig()
        text.vocabSize = max(tokenizer.bosTokenId, tokenizer.eosTokenId) + 1  // the specials end the lane's vocabulary
        text.hiddenSize = 32
        text.intermediateSize = 64
        text.numHiddenLayers = 1
        text.numAttentionHeads = 4
        text.bosTokenId = tokenizer.bosTokenId
        text.eosTokenId = tokenizer.eosTokenId
        var vision = CLIPVisionConfig()
        vision.hiddenSize = 32
        vision.intermediateSize = 64
        vision.numHiddenLayers = 1
        vision.numAttentionHeads = 4
        let config = CLIPConfig(textConfig: text, visionConfig: vision, projectionDim: 16)
        let weights = VarStore(generator: try Generator(seed: 9))
        _ = try CLIPModel(weights.root, config: config)
        let store = VarStore(device: device, initialize: false)
        let model = try CLIPModel(store.root, config: config)
        try store.load(weights.stateDict())
        return CLIPScore(model: model, processor: try CLIPImageProcessor(), tokenizer: tokenizer)
    }

    func clipScore() throws -> (Bool, String) {
        let images = try SyntheticLineArt.make(count: 4, size: 48, seed: 2)
        let prompts = images.map(\.caption)
        let scores = try [Device.cpu, device].map { try clipScorer(on: $0).scores(images: images.map(\.image), prompts: prompts) }
        let (passed, detail) = Self.within(try maxDifference(scores[1], scores[0]), tolerance.fp32 * 100)
        return (passed, "4 images, per-sample scores (×100 scale): \(detail)")
    }

    func captioning() throws -> (Bool, String) {
        let folder = work.appendingPathComponent("blip")
        if !FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.safetensors").path) {
            try DemoModels.writeBlip(to: folder, seed: 4, words: Self.words)
        }
        let images = try SyntheticLineArt.make(count: 3, size: 48, seed: 8).map(\.image)
        let captions = try [Device.cpu, device].map {
            try BlipImageCaptioner(folder: folder, device: $0, prefix: "a tattoo of", beams: 3, maxLength: 12).caption(images)
        }
        let same = captions[0] == captions[1]
        return (same, same ? "3 images, beam search 3: the same captions (\(captions[0][0]))"
                           : "captions differ: cpu \(captions[0]) vs device \(captions[1])")
    }
}
