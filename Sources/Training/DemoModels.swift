// Tiny models of the real architectures, with RANDOM weights, for the offline demo: an SD1.x-layout
// diffusers folder (UNet, VAE, CLIP text encoder, a byte-level CLIP tokenizer, SD1.5's scheduler) and a
// BLIP captioning folder in transformers' layout. They load through the same loaders as real weights;
// their images and captions are noise and nonsense, and every folder says so in a README.
import AtomicFile
import Foundation
import Captioning
import Evaluation
import StableDiffusion
import Torch

public enum DemoModels {
    static let notice = """
        RANDOM WEIGHTS. Made by `inkwell demo` to exercise the whole pipeline offline: the architecture and \
        file layout are real (SD1.x / BLIP), the weights are random, so images are noise and captions nonsense.

        """

    // MARK: Stable Diffusion

    /// GPT-2/CLIP's byte → character table: printable bytes map to themselves, the rest to U+0100….
    static func byteCharacters() -> [Character] {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var chars = printable.map { Character(UnicodeScalar(UInt8($0))) }
        var extra = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            if let scalar = UnicodeScalar(UInt32(256 + extra)) { chars.append(Character(scalar)) }
            extra += 1
        }
        // Order by byte value, as the tokenizer's vocabulary lists them.
        return zip(printable, chars).sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The sizes of a tiny SD1.x model; every other setting is SD1.5's.
    public struct Architecture: Sendable, Equatable {
        public var unetChannels: [Int]
        /// Blocks with cross-attention, from the top (the rest are plain `DownBlock2D`/`UpBlock2D`).
        public var attentionBlocks: Int
        public var unetLayersPerBlock: Int
        /// One VAE level per entry: n levels shrink the image 2ⁿ⁻¹ times.
        public var vaeChannels: [Int]
        public var textHidden: Int
        public var textLayers: Int

        /// The pipeline checks' random model: two UNet levels, a VAE that halves the image.
        public static let minimal = Architecture(unetChannels: [32, 64], attentionBlocks: 1, unetLayersPerBlock: 1,
                                                 vaeChannels: [16, 32], textHidden: 32, textLayers: 2)
        /// The trained demo model: three UNet levels over 16×16 latents of a 64 px image (the VAE shrinks 4×).
        public static let drawing = Architecture(unetChannels: [32, 64, 64], attentionBlocks: 2, unetLayersPerBlock: 1,
                                                 vaeChannels: [16, 32, 64], textHidden: 64, textLayers: 2)
    }

    /// A diffusers SD1.x folder at `folder` with tiny random models. The tokenizer has every byte as a
    /// token plus BPE merges that make each of `words` one token (so prompts stay short).
    public static func writeStableDiffusion(to folder: URL, seed: UInt64, words: [String] = [],
                                            architecture a: Architecture = .minimal) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        try writeAtomically(Data(notice.utf8), to: folder.appendingPathComponent("README.txt"))
        let json = JSONEncoder()
        json.outputFormatting = [.prettyPrinted, .sortedKeys]

        let tokens = try writeTokenizer(to: folder.appendingPathComponent("tokenizer"), words: words)
        var text = CLIPTextConfig()
        text.vocabSize = tokens.count
        text.hiddenSize = a.textHidden
        text.intermediateSize = 2 * a.textHidden
        text.numHiddenLayers = a.textLayers
        text.numAttentionHeads = 4
        text.projectionDim = a.textHidden
        text.bosTokenId = tokens.count - 2
        text.eosTokenId = tokens.count - 1
        let textStore = VarStore(generator: try Generator(seed: seed))
        _ = try CLIPTextModel(textStore.root, config: text)
        try save(textStore, config: try pointedFloats(json.encode(text)), to: folder.appendingPathComponent("text_encoder"),
                 weights: "model.safetensors")

        var unet = UNet2DConditionConfig()
        unet.blockOutChannels = a.unetChannels
        unet.downBlockTypes = a.unetChannels.indices.map { $0 < a.attentionBlocks ? "CrossAttnDownBlock2D" : "DownBlock2D" }
        unet.upBlockTypes = unet.downBlockTypes.reversed().map { $0 == "DownBlock2D" ? "UpBlock2D" : "CrossAttnUpBlock2D" }
        unet.layersPerBlock = .all(a.unetLayersPerBlock)
        unet.normNumGroups = 8
        unet.crossAttentionDim = .all(a.textHidden)
        unet.attentionHeads = 4
        unet.sampleSize = .square(64 >> (a.vaeChannels.count - 1))
        let unetStore = VarStore(generator: try Generator(seed: seed &+ 1))
        _ = try UNet2DConditionModel(unetStore.root, config: unet)
        try save(unetStore, config: try classNamed("UNet2DConditionModel", try json.encode(unet)),
                 to: folder.appendingPathComponent("unet"), weights: "diffusion_pytorch_model.safetensors")

        var vae = AutoencoderKLConfig()
        vae.blockOutChannels = a.vaeChannels
        vae.downBlockTypes = a.vaeChannels.map { _ in "DownEncoderBlock2D" }
        vae.upBlockTypes = a.vaeChannels.map { _ in "UpDecoderBlock2D" }
        vae.layersPerBlock = 1
        vae.normNumGroups = 8
        vae.sampleSize = .square(64)
        let vaeStore = VarStore(generator: try Generator(seed: seed &+ 2))
        _ = try AutoencoderKL(vaeStore.root, config: vae)
        try save(vaeStore, config: try classNamed("AutoencoderKL", try json.encode(vae)),
                 to: folder.appendingPathComponent("vae"), weights: "diffusion_pytorch_model.safetensors")

        let scheduler = folder.appendingPathComponent("scheduler")
        try fm.createDirectory(at: scheduler, withIntermediateDirectories: true)
        try writeAtomically(json.encode(StableDiffusion15.schedulerConfig),
                            to: scheduler.appendingPathComponent("scheduler_config.json"))
        let index: [String: Any] = [
            "_class_name": "StableDiffusionPipeline", "_inkwell_note": "random weights (demo)",
            "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        ]
        try writeAtomically(JSONSerialization.data(withJSONObject: index, options: [.sortedKeys, .prettyPrinted]),
                            to: folder.appendingPathComponent("model_index.json"))
    }

    /// A CLIP BPE tokenizer in `tokenizer` (vocab.json, merges.txt, tokenizer_config.json); returns its tokens.
    static func writeTokenizer(to tokenizer: URL, words: [String]) throws -> [String] {
        // Tokenizer: every byte is a token; merges build each word left to right ("t a" → "ta", "ta t"
        // → "tat", …, ending in "</w>"), then CLIP's two special tokens.
        let chars = byteCharacters().map(String.init)
        var tokens = chars + chars.map { $0 + "</w>" }
        var merges: [String] = []
        var known = Set(tokens)
        for word in Set(words.map { $0.lowercased() }).sorted() where word.count > 1 && word.allSatisfy({ $0.isASCII && $0.isLetter }) {
            let letters = word.map(String.init)
            var current = letters[0]
            for (i, next) in letters.dropFirst().enumerated() {
                let piece = i == letters.count - 2 ? next + "</w>" : next
                let merged = current + piece
                if !known.contains(merged) {
                    merges.append("\(current) \(piece)")
                    tokens.append(merged)
                    known.insert(merged)
                }
                current = merged
            }
        }
        tokens += ["<|startoftext|>", "<|endoftext|>"]
        try FileManager.default.createDirectory(at: tokenizer, withIntermediateDirectories: true)
        let vocab = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($1, $0) })
        try writeAtomically(JSONSerialization.data(withJSONObject: vocab, options: [.sortedKeys]),
                            to: tokenizer.appendingPathComponent("vocab.json"))
        try writeAtomically(Data((["#version: 0.2"] + merges).joined(separator: "\n").appending("\n").utf8),
                            to: tokenizer.appendingPathComponent("merges.txt"))
        let tokenizerConfig: [String: Any] = ["model_max_length": 77, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                                              "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "do_lower_case": true]
        try writeAtomically(JSONSerialization.data(withJSONObject: tokenizerConfig, options: [.sortedKeys, .prettyPrinted]),
                            to: tokenizer.appendingPathComponent("tokenizer_config.json"))

        return tokens
    }

    /// transformers 5 validates its config fields' types strictly: a float field written as `1` (how
    /// JSONEncoder writes 1.0) fails to load. Writes the CLIP configs' float fields with their point.
    static func pointedFloats(_ config: Data) throws -> Data {
        var text = String(decoding: config, as: UTF8.self)
        for key in ["attention_dropout", "dropout", "initializer_factor", "initializer_range", "layer_norm_eps",
                    "logit_scale_init_value"] {
            text = text.replacing(try Regex("(\"\(key)\" ?: ?-?[0-9]+)(?=[,\\s}])"), with: { "\($0.output[1].substring ?? "").0" })
        }
        return Data(text.utf8)
    }

    static func classNamed(_ name: String, _ config: Data) throws -> Data {
        guard var object = try JSONSerialization.jsonObject(with: config) as? [String: Any] else { return config }
        object["_class_name"] = name
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
    }

    static func save(_ store: VarStore, config: Data, to folder: URL, weights: String) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try writeAtomically(config, to: folder.appendingPathComponent("config.json"))
        try store.save(to: folder.appendingPathComponent(weights))
    }

    // MARK: CLIP

    /// A transformers CLIP folder (openai/clip-vit-base-patch32 layout and preprocessing, 32 px crops) with
    /// a tiny RANDOM model, for the demo's CLIP-score path; its scores mean nothing.
    public static func writeClip(to folder: URL, seed: UInt64, words: [String]) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try writeAtomically(Data(notice.utf8), to: folder.appendingPathComponent("README.txt"))
        let tokens = try writeTokenizer(to: folder, words: words)
        var text = CLIPTextConfig()
        text.vocabSize = tokens.count
        text.hiddenSize = 32
        text.intermediateSize = 64
        text.numHiddenLayers = 2
        text.numAttentionHeads = 4
        text.projectionDim = 32
        text.bosTokenId = tokens.count - 2
        text.eosTokenId = tokens.count - 1
        var vision = CLIPVisionConfig()
        vision.hiddenSize = 32
        vision.intermediateSize = 64
        vision.numHiddenLayers = 2
        vision.numAttentionHeads = 4
        vision.imageSize = 32
        vision.patchSize = 8
        vision.projectionDim = 32
        let config = CLIPConfig(textConfig: text, visionConfig: vision, projectionDim: 32)
        let store = VarStore(generator: try Generator(seed: seed))
        _ = try CLIPModel(store.root, config: config)
        try store.save(to: folder.appendingPathComponent("model.safetensors"))
        let json = JSONEncoder()
        json.outputFormatting = [.prettyPrinted, .sortedKeys]
        let object: [String: Any] = [
            "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 32, "logit_scale_init_value": 2.6592,
            "text_config": try JSONSerialization.jsonObject(with: json.encode(text)),
            "vision_config": try JSONSerialization.jsonObject(with: json.encode(vision)),
        ]
        try writeAtomically(pointedFloats(JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])),
                            to: folder.appendingPathComponent("config.json"))
        let preprocessor: [String: Any] = [
            "do_center_crop": true, "crop_size": ["height": 32, "width": 32], "do_normalize": true, "do_rescale": true,
            "do_resize": true, "image_processor_type": "CLIPImageProcessor", "resample": 3, "rescale_factor": 1.0 / 255,
            "size": ["shortest_edge": 32], "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711], "do_convert_rgb": true,
        ]
        try writeAtomically(JSONSerialization.data(withJSONObject: preprocessor, options: [.sortedKeys, .prettyPrinted]),
                            to: folder.appendingPathComponent("preprocessor_config.json"))
    }

    // MARK: BLIP

    /// A transformers BLIP captioning folder with a tiny random model and a WordPiece vocabulary of the
    /// special tokens plus `words` (no `[unused]` slots, so even random weights emit words).
    public static func writeBlip(to folder: URL, seed: UInt64, words: [String]) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        try writeAtomically(Data(notice.utf8), to: folder.appendingPathComponent("README.txt"))
        var vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        var seen = Set(vocab)
        for word in words.map({ $0.lowercased() }) where !seen.contains(word) {
            vocab.append(word)
            seen.insert(word)
        }
        try writeAtomically(Data((vocab.joined(separator: "\n") + "\n").utf8), to: folder.appendingPathComponent("vocab.txt"))
        let special: [String: Any] = ["cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]",
                                      "unk_token": "[UNK]"]
        var tokenizerConfig = special
        tokenizerConfig["do_lower_case"] = true
        tokenizerConfig["model_max_length"] = 512
        tokenizerConfig["tokenizer_class"] = "BertTokenizer"
        try writeAtomically(JSONSerialization.data(withJSONObject: tokenizerConfig, options: [.sortedKeys, .prettyPrinted]),
                            to: folder.appendingPathComponent("tokenizer_config.json"))
        try writeAtomically(JSONSerialization.data(withJSONObject: special, options: [.sortedKeys, .prettyPrinted]),
                            to: folder.appendingPathComponent("special_tokens_map.json"))
        let preprocessor: [String: Any] = [
            "do_normalize": true, "do_rescale": true, "do_resize": true, "image_processor_type": "BlipImageProcessor",
            "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
            "resample": 3, "rescale_factor": 1.0 / 255, "size": ["height": 32, "width": 32],
        ]
        try writeAtomically(JSONSerialization.data(withJSONObject: preprocessor, options: [.sortedKeys, .prettyPrinted]),
                            to: folder.appendingPathComponent("preprocessor_config.json"))

        var config = BlipConfig()
        config.visionConfig.hiddenSize = 32
        config.visionConfig.intermediateSize = 64
        config.visionConfig.numHiddenLayers = 2
        config.visionConfig.numAttentionHeads = 4
        config.visionConfig.imageSize = 32
        config.visionConfig.patchSize = 8
        config.textConfig.vocabSize = vocab.count + 1  // + [DEC], the decoder's start token
        config.textConfig.hiddenSize = 32
        config.textConfig.encoderHiddenSize = 32
        config.textConfig.intermediateSize = 48
        config.textConfig.numHiddenLayers = 2
        config.textConfig.numAttentionHeads = 4
        config.textConfig.maxPositionEmbeddings = 64
        config.textConfig.bosTokenID = vocab.count
        config.textConfig.sepTokenID = 3
        config.textConfig.eosTokenID = TokenIDs([3])
        config.textConfig.padTokenID = 0
        let store = VarStore(generator: try Generator(seed: seed))
        _ = try BlipForConditionalGeneration(config: config, store: store)
        let json = JSONEncoder()
        json.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(json.encode(config), to: folder.appendingPathComponent("config.json"))
        try store.save(to: folder.appendingPathComponent("model.safetensors"))
    }
}
