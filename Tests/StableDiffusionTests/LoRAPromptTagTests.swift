// A1111's <lora:NAME:SCALE> prompt tags (modules/extra_networks.py parse_prompt, the Lora extension's
// arguments): cut from the text the encoder sees, kept in the PNG's prompt.
import Foundation
import Testing
@testable import StableDiffusion

@Suite struct LoRAPromptTagTests {
    @Test func tagsAreCutFromThePrompt() throws {
        let (prompt, tags) = try LoRAPromptTag.extract(from: "rose, <lora:inkstyle:0.8> line art <lora:dots>")
        #expect(prompt == "rose,  line art ")
        #expect(tags == [LoRAPromptTag(name: "inkstyle", scale: 0.8), LoRAPromptTag(name: "dots", scale: 1)])
        #expect(tags.map(\.text) == ["<lora:inkstyle:0.8>", "<lora:dots:1>"])
        // Equal text-encoder and UNet scales are one scale; a prompt without tags is unchanged.
        #expect(try LoRAPromptTag.extract(from: "<lora:a:0.5:0.5>").tags == [LoRAPromptTag(name: "a", scale: 0.5)])
        #expect(try LoRAPromptTag.extract(from: "a <b> c: d").prompt == "a <b> c: d")
        // The bound itself is accepted.
        #expect(try LoRAPromptTag.extract(from: "<lora:a:-100>").tags == [LoRAPromptTag(name: "a", scale: -100)])
    }

    @Test func badTagsAreNamed() {
        for (prompt, says) in [("<lora:x:strong>", "'strong' is not a number"), ("<hypernet:x:1>", "only <lora:…> tags"),
                               ("<lora:x:0.5:1>", "separate text-encoder and UNet scales"), ("<lora: :1>", "names no LoRA"),
                               // Finite but absurd scales (once an all-black image and exit 0), and non-finite ones.
                               ("<lora:x:1e308>", "<lora:x:1e308>: the scale 1e308 is beyond ±100"),
                               ("<lora:x:-100.5>", "the scale -100.5 is beyond ±100"),
                               ("<lora:x:inf>", "'inf' is not a number"), ("<lora:x:nan>", "'nan' is not a number")] {
            do {
                _ = try LoRAPromptTag.extract(from: prompt)
                Issue.record("\(prompt) was accepted")
            } catch {
                #expect("\(error)".contains(says), "\(prompt): \(error)")
            }
        }
    }

    @Test func thePNGPromptNamesEveryLoRA() {
        var job = TextToImageJob(options: GenerationOptions(prompt: "rose <lora:dots:0.5>"), sampler: .eulerA,
                                 outputDirectory: URL(fileURLWithPath: "/tmp"))
        job.loras = [("inkstyle-best", "0123456789ab", 0.8), ("dots", "ba9876543210", 0.5)]
        let info = job.info(index: 0, defaultSampler: nil)
        #expect(info.prompt == "rose <lora:dots:0.5> <lora:inkstyle-best:0.8>")
        #expect(info.loraHashes.map(\.0) == ["inkstyle-best", "dots"])
        #expect(GenerationInfo(text: info.text)?.prompt == info.prompt)
    }
}
