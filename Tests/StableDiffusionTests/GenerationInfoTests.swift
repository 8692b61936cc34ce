import Testing
@testable import StableDiffusion

/// The expected strings below are A1111's format as specified in shared/reference/formats.md §8
/// (create_infotext / quote), not outputs of this code.
@Suite struct GenerationInfoTests {
    @Test func formatsLikeA1111() {
        var info = GenerationInfo(prompt: "a cat", negativePrompt: "blurry", steps: 20, sampler: "Euler a",
                                  scheduleType: "Automatic", cfgScale: 7, seed: 965400086, width: 512, height: 512,
                                  modelHash: "6ce0161689", model: "v1-5-pruned-emaonly", version: "v1.10.1")
        #expect(info.text == "a cat\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1")
        info.negativePrompt = ""
        info.cfgScale = 7.5
        info.clipSkip = 2
        info.loraHashes = [("my:lora, v2", "0123456789ab")]
        #expect(info.text == "a cat\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7.5, Seed: 965400086, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Clip skip: 2, Lora hashes: \"mylora v2: 0123456789ab\", Version: v1.10.1")
        // img2img: A1111 writes the strength after the model, before Clip skip.
        info.denoisingStrength = 0.6
        #expect(info.text.contains("Model: v1-5-pruned-emaonly, Denoising strength: 0.6, Clip skip: 2, "))
    }

    @Test func quotesValuesWithSeparatorsAsJSON() {
        #expect(GenerationInfo.quote("plain") == "plain")
        #expect(GenerationInfo.quote("a, b") == "\"a, b\"")
        #expect(GenerationInfo.quote("k: \"v\"\n") == "\"k: \\\"v\\\"\\n\"")
        #expect(GenerationInfo.quote("café: ü") == "\"café: ü\"")
    }

    @Test func parsesItsOwnTextBack() throws {
        var info = GenerationInfo(prompt: "line art, rose\nsecond line", negativePrompt: "color, shading", steps: 30,
                                  sampler: "DPM++ 2M", scheduleType: "Karras", cfgScale: 6.5, seed: 42, width: 512,
                                  height: 768, modelHash: "abcdef0123", model: "tiny")
        info.loraHashes = [("tattoo", "0123456789ab"), ("ink", "ba9876543210")]
        info.extra = [("Inkwell LoRA scale", "0.8")]
        info.denoisingStrength = 0.35
        let parsed = try #require(GenerationInfo(text: info.text))
        #expect(parsed.prompt == info.prompt)
        #expect(parsed.negativePrompt == info.negativePrompt)
        #expect(parsed.steps == 30 && parsed.sampler == "DPM++ 2M" && parsed.scheduleType == "Karras")
        #expect(parsed.cfgScale == 6.5 && parsed.seed == 42 && parsed.width == 512 && parsed.height == 768)
        #expect(parsed.loraHashes.map(\.0) == ["tattoo", "ink"])
        #expect(parsed.extra.map(\.1) == ["0.8"])
        #expect(parsed.denoisingStrength == 0.35)
        #expect(parsed.text == info.text)
        #expect(GenerationInfo(text: "just a prompt") == nil)
    }
}
