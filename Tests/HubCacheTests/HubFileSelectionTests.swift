// Which files `inkwell download` picks from a repo's list, on names as diffusers and transformers write them
// (the served-repo tests check the same rules against diffusers' own choice on a real repo).
import Testing
@testable import HubCache

@Suite struct HubFileSelectionTests {
    /// An SD1.5-style diffusers repo: root single-file checkpoints, a safety checker, fp16 variants in some
    /// folders only, a sharded UNet, pickles and Flax weights beside the safetensors.
    static let repo = [
        ".gitattributes", "README.md", "model_index.json", "v1-5-pruned-emaonly.safetensors", "v1-5-pruned.ckpt",
        "feature_extractor/preprocessor_config.json",
        "safety_checker/config.json", "safety_checker/model.safetensors", "safety_checker/pytorch_model.bin",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json", "text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors",
        "text_encoder/flax_model.msgpack",
        "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
        "unet/config.json", "unet/diffusion_pytorch_model.safetensors.index.json",
        "unet/diffusion_pytorch_model-00001-of-00002.safetensors", "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
        "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
        "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
        "unet/diffusion_pytorch_model.bin",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_model.onnx",
    ]

    @Test func plainWeightsConfigsAndTokenizer() {
        let selection = HubFileSelection(files: Self.repo)
        #expect(selection.files == [
            "model_index.json", "feature_extractor/preprocessor_config.json", "safety_checker/config.json",
            "scheduler/scheduler_config.json", "text_encoder/config.json", "text_encoder/model.safetensors",
            "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
            "unet/config.json", "unet/diffusion_pytorch_model.safetensors.index.json",
            "unet/diffusion_pytorch_model-00001-of-00002.safetensors", "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
            "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
        ])
        let reasons = Dictionary(uniqueKeysWithValues: selection.skipped.map { ($0.path, $0.reason) })
        #expect(reasons["v1-5-pruned-emaonly.safetensors"] == .rootCheckpoint)
        #expect(reasons["v1-5-pruned.ckpt"] == .pickle && reasons["unet/diffusion_pytorch_model.bin"] == .pickle)
        #expect(reasons["safety_checker/model.safetensors"] == .unusedComponent)
        #expect(reasons["text_encoder/model.fp16.safetensors"] == .otherVariant)
        #expect(reasons["text_encoder/flax_model.msgpack"] == .otherFormat && reasons["vae/diffusion_model.onnx"] == .otherFormat)
        #expect(selection.files.count + selection.skipped.count == Self.repo.count)
    }

    /// fp16 where a folder has it (text encoder, sharded UNet with its variant index), the plain VAE where not.
    @Test func aVariantFallsBackPerFolder() {
        let weights = HubFileSelection(files: Self.repo, variant: "fp16").files.filter { !$0.hasSuffix("config.json") && $0.contains("/") }
        #expect(weights.filter { !$0.hasPrefix("tokenizer/") && !$0.hasPrefix("feature_extractor/") } == [
            "text_encoder/model.fp16.safetensors",
            "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
            "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
            "vae/diffusion_pytorch_model.safetensors",
        ])
        #expect(HubFileSelection.variant(of: "sd_1.5.safetensors") == nil)
        #expect(HubFileSelection.variant(of: "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors") == "fp16")
    }

    /// --include is fnmatch as huggingface_hub's: `*` crosses folders, a trailing `/` is a folder, pickles when named.
    @Test func includeIsExactlyWhatMatches() {
        #expect(HubFileSelection(files: Self.repo, include: ["*.ckpt", "vae/"]).files
                == ["v1-5-pruned.ckpt", "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_model.onnx"])
        #expect(HubFileSelection(files: Self.repo, include: ["*/config.json"]).files.count == 4)
        #expect(HubFileSelection(files: Self.repo, include: ["v1-5-pruned-emaonly.safetensors"]).files == ["v1-5-pruned-emaonly.safetensors"])
    }
}
