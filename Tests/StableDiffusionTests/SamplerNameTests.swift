// Sampler names as users type them: ours, A1111's (what its infotext writes), ComfyUI's sampler (+ karras
// scheduler) names and snake case all find the same sampler; anything else is refused.
import Foundation
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
            // A1111's names, ComfyUI's sampler (+ karras scheduler) names, snake case, ours.
            ("Heun", .heun), ("heun", .heun),
            ("LMS", .lms), ("lms", .lms), ("LMS Karras", .lmsKarras), ("lms_karras", .lmsKarras),
            ("lms karras", .lmsKarras), ("lms-karras", .lmsKarras),
            ("UniPC", .unipc), ("uni_pc", .unipc), ("unipc", .unipc),
            ("DPM++ 2M SDE", .dpmpp2mSde), ("dpmpp_2m_sde", .dpmpp2mSde), ("dpm++2m-sde", .dpmpp2mSde),
            ("DPM++ 2M SDE Karras", .dpmpp2mSdeKarras), ("dpmpp_2m_sde_karras", .dpmpp2mSdeKarras),
            ("dpmpp_2m_sde karras", .dpmpp2mSdeKarras), ("dpm++2m-sde-karras", .dpmpp2mSdeKarras),
            ("DPM2", .dpm2), ("dpm_2", .dpm2), ("dpm2", .dpm2), ("DPM2 Karras", .dpm2Karras), ("dpm_2 karras", .dpm2Karras),
            ("dpm2-karras", .dpm2Karras),
            ("DPM2 a", .dpm2A), ("dpm_2_ancestral", .dpm2A), ("dpm2_a", .dpm2A), ("dpm2-a", .dpm2A),
            ("DPM2 a Karras", .dpm2AKarras), ("dpm_2_ancestral karras", .dpm2AKarras), ("dpm2_a_karras", .dpm2AKarras),
            ("dpm2-a-karras", .dpm2AKarras),
        ]
        for (name, sampler) in spellings { #expect(Sampler(name: name) == sampler, "\(name)") }
        for name in ["", "euler ancestral karras", "dpm2m", "heun karras", "dpmpp_sde", "dpmpp_2m_sde_gpu", "uni_pc_bh2", "lcm"] {
            #expect(Sampler(name: name) == nil, "\(name)")
        }
    }

    @Test func a1111NamesReadBackAsTheSameSampler() {
        // What the PNG's parameters say ("Sampler: DPM++ 2M, Schedule type: Karras") names the sampler again.
        for sampler in Sampler.allCases {
            let names = sampler.a1111
            #expect(Sampler(name: names.sampler + " " + (names.schedule ?? "")) == sampler)
            #expect(Sampler(name: sampler.rawValue) == sampler)
        }
    }

    /// No two samplers share a name: every alias finds exactly its own sampler.
    @Test func namesAreUnambiguous() {
        for sampler in Sampler.allCases {
            for alias in sampler.aliases {
                #expect(Sampler.allCases.filter { $0.aliases.contains(alias) } == [sampler], "\(alias)")
            }
        }
    }

    /// Each sampler builds its diffusers scheduler with the options its name stands for.
    @Test func samplersConfigureTheirSchedulers() throws {
        let sd15 = try SchedulerConfig(json: Data(#"""
            {"_class_name": "PNDMScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
             "steps_offset": 1, "algorithm_type": "sde-dpmsolver++"}
            """#.utf8))
        let pipe = { (sampler: Sampler) throws -> any Scheduler in
            var options = GenerationOptions(prompt: "")
            options.use(sampler)
            return try sd15.makeScheduler(for: options)
        }
        // A model config asking for the SDE variant does not turn "DPM++ 2M" into it.
        #expect((try pipe(.dpmpp2m) as? DPMSolverMultistepScheduler)?.algorithmType == .dpmsolverPlusPlus)
        let sde = try #require(try pipe(.dpmpp2mSdeKarras) as? DPMSolverMultistepScheduler)
        #expect(sde.algorithmType == .sdeDpmsolverPlusPlus && sde.useKarrasSigmas)
        #expect((try pipe(.dpmpp2mSde) as? DPMSolverMultistepScheduler)?.useKarrasSigmas == false)
        #expect((try pipe(.lmsKarras) as? LMSDiscreteScheduler)?.useKarrasSigmas == true)
        #expect((try pipe(.dpm2AKarras) as? KDPM2AncestralDiscreteScheduler)?.useKarrasSigmas == true)
        #expect((try pipe(.dpm2) as? KDPM2DiscreteScheduler)?.useKarrasSigmas == false)
        #expect(try pipe(.heun) is HeunDiscreteScheduler && pipe(.unipc) is UniPCMultistepScheduler)
        // Each Swift class is named after its diffusers class, the kind's raw value.
        for sampler in Sampler.allCases {
            #expect(String(describing: type(of: try pipe(sampler))) == sampler.schedulerKind.rawValue, "\(sampler)")
        }
    }

    /// A model's scheduler_config.json names its default sampler, for the infotext.
    @Test func aModelConfigNamesItsSampler() throws {
        func sampler(_ json: String) throws -> Sampler? { Sampler(config: try SchedulerConfig(json: Data(json.utf8))) }
        #expect(try sampler(#"{"_class_name": "PNDMScheduler"}"#) == .pndm)
        #expect(try sampler(#"{"_class_name": "HeunDiscreteScheduler"}"#) == .heun)
        #expect(try sampler(#"{"_class_name": "UniPCMultistepScheduler"}"#) == .unipc)
        #expect(try sampler(#"{"_class_name": "LMSDiscreteScheduler", "use_karras_sigmas": true}"#) == .lmsKarras)
        #expect(try sampler(#"{"_class_name": "KDPM2AncestralDiscreteScheduler"}"#) == .dpm2A)
        #expect(try sampler(#"{"_class_name": "KDPM2DiscreteScheduler", "use_karras_sigmas": true}"#) == .dpm2Karras)
        #expect(try sampler(#"{"_class_name": "DPMSolverMultistepScheduler"}"#) == .dpmpp2m)
        #expect(try sampler(#"{"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "sde-dpmsolver++", "#
                            + #""use_karras_sigmas": true}"#) == .dpmpp2mSdeKarras)
        #expect(try sampler(#"{"_class_name": "UniPCMultistepScheduler", "use_karras_sigmas": true}"#) == .unipc)
        #expect(try sampler(#"{"_class_name": "DPMSolverSDEScheduler"}"#) == nil)
        for kind in SchedulerKind.allCases { #expect(Sampler(kind: kind)?.schedulerKind == kind) }
    }
}
