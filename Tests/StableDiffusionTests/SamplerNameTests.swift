// Sampler names as users type them: ours, A1111's (what its infotext writes), ComfyUI's sampler (+ karras
// scheduler) names and snake case all find the same sampler; anything else is refused.
import Testing
@testable import StableDiffusion

@Suite struct SamplerNameTests {
    @Test func everyCommonSpellingFindsItsSampler() {
        let spellings: [(String, Sampler)] = [
            ("DPM++ 2M Karras", .dpmpp2mKarras), ("dpmpp_2m_karras", .dpmpp2mKarras), ("dpmpp_2m karras", .dpmpp2mKarras),
            ("dpm++2m-karras", .dpmpp2mKarras), ("DPM++ 2M", .dpmpp2m), ("dpmpp_2m", .dpmpp2m),
            ("Euler a", .eulerA), ("euler_a", .eulerA), ("euler_ancestral", .eulerA), ("EULER-A", .eulerA),
            ("Euler", .euler), ("euler karras", .eulerKarras), ("euler_karras", .eulerKarras),
            ("DDIM", .ddim), ("ddpm", .ddpm), ("PLMS", .pndm), ("pndm", .pndm),
        ]
        for (name, sampler) in spellings { #expect(Sampler(name: name) == sampler, "\(name)") }
        for name in ["", "euler ancestral karras", "dpm2", "heun", "dpmpp_2m_sde"] { #expect(Sampler(name: name) == nil, "\(name)") }
    }

    @Test func a1111NamesReadBackAsTheSameSampler() {
        // What the PNG's parameters say ("Sampler: DPM++ 2M, Schedule type: Karras") names the sampler again.
        for sampler in Sampler.allCases {
            let names = sampler.a1111
            #expect(Sampler(name: names.sampler + " " + (names.schedule ?? "")) == sampler)
            #expect(Sampler(name: sampler.rawValue) == sampler)
        }
    }
}
