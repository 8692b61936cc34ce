import Foundation
import Testing
import TestSupport
import Torch
@testable import StableDiffusion

/// Parity with diffusers' schedulers (reference/fixtures/schedulers.py): each case is a
/// scheduler_config.json, a scheduler class built from it as `from_config` does, a step count, and a
/// trajectory from fixed model outputs. Timesteps, sigmas, init_noise_sigma, ᾱ and every scaled input and
/// step output must be bit-identical to diffusers' (tolerance 0; the stochastic samplers draw their noise
/// from a Generator with the fixture's seed).
@Suite struct SchedulerTests {
    static let cases = [
        "pndm_sd15", "pndm_prk", "pndm_linspace_vpred", "pndm_trailing",
        "ddim_sd15", "ddim_eta", "ddim_trailing_vpred_zsnr", "ddim_linspace_cosine_clip", "ddim_trained_betas_null_clip",
        "ddpm_sd15", "ddpm_small_log", "ddpm_large_trailing_sample",
        "euler_sd15", "euler_leading_vpred", "euler_trailing", "euler_karras", "euler_karras_bounds",
        "euler_a_sd15", "euler_a_leading_vpred", "euler_a_500_steps", "euler_a_trailing_zsnr",
        "dpm_sd15", "dpm_sd15_10", "dpm_karras", "dpm_karras_vpred", "dpm_leading", "dpm_trailing_heun",
        "dpm_order3", "dpm_sde", "dpm_sde_karras_order3_heun", "dpm_cosine_clipped", "dpm_cosine_karras",
    ]

    struct Case: Decodable {
        let name: String
        let `class`: String
        let steps: Int
        let eta: Double
        let seed: UInt64?
    }

    static func loadCases() throws -> [String: Case] {
        let data = try Data(contentsOf: try Fixtures.url("schedulers", "cases.json"))
        let list = try JSONDecoder().decode([Case].self, from: data)
        return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
    }

    @Test func everyFixtureCaseIsTested() throws {
        #expect(Set(try Self.loadCases().keys) == Set(Self.cases))
    }

    @Test(arguments: cases) func matchesDiffusers(_ name: String) throws {
        guard let meta = try Self.loadCases()[name], let kind = SchedulerKind(rawValue: meta.class) else {
            Issue.record("case \(name) missing from cases.json or of an unknown class")
            return
        }
        let f = try Fixtures.tensors("schedulers", name)
        let config = try SchedulerConfig.load(from: try Fixtures.url("schedulers", name + ".json"))
        let scheduler = try config.makeScheduler(kind)
        if let ddim = scheduler as? DDIMScheduler { ddim.eta = meta.eta }
        try scheduler.setTimesteps(meta.steps)

        try expectEqual(scheduler.schedule.alphasCumprod, try f.get("alphas_cumprod"), "\(name) alphas_cumprod")
        // Exact also for the Karras cases, whose timesteps go through `_sigma_to_t` on np.log of float32
        // sigmas: numpy's SIMD float32 log and libtorch's (used here) can differ in the last bit, but not
        // for these schedules; a future mismatch would move a float32 timestep by about one ulp.
        try expectEqual(try scheduler.timestepsTensor(), try f.get("timesteps"), "\(name) timesteps")
        if let expected = f["sigmas"] {
            guard let sigmas = scheduler.sigmas else { Issue.record("\(name): no sigmas"); return }
            try expectEqual(try Tensor(sigmas), expected, "\(name) sigmas")
        } else {
            #expect(scheduler.sigmas == nil)
        }
        #expect(scheduler.initNoiseSigma == (try f.get("init_noise_sigma").item()), "\(name) init_noise_sigma")

        var x = try f.get("sample")
        let noise = try f.get("add_noise.noise"), ts = scheduler.timesteps
        try expectEqual(try scheduler.addNoise(x, noise: noise, timesteps: [ts[2], ts[4]]),
                        try f.get("add_noise.lookup"), "\(name) add_noise")
        if let expected = f["add_noise.begin3"] {
            let fresh = try #require(try config.makeScheduler(kind) as? IndexedScheduler)
            try fresh.setTimesteps(meta.steps)
            fresh.beginIndex = 3
            try expectEqual(try fresh.addNoise(x, noise: noise, timesteps: [ts[3], ts[3]]), expected,
                            "\(name) add_noise from begin index")
        } else {
            #expect(!(scheduler is IndexedScheduler))
        }

        let generator = try meta.seed.map { NoiseGenerator.shared(try Generator(seed: $0)) }
        for (i, t) in scheduler.timesteps.enumerated() {
            let scaled = try scheduler.scaleModelInput(x, timestep: t)
            try expectEqual(scaled, try f.get("scaled.\(i)"), "\(name) scaled.\(i)")
            x = try scheduler.step(modelOutput: try f.get("model_output.\(i)"), timestep: t, sample: x,
                                   generator: generator)
            try expectEqual(x, try f.get("prev.\(i)"), "\(name) prev.\(i)")
        }
    }

    /// DDPM's training maths (add_noise, get_velocity, compute_snr), bit-identical.
    @Test func trainingMathMatchesDiffusers() throws {
        let f = try Fixtures.tensors("schedulers", "training")
        let config = try SchedulerConfig.load(from: try Fixtures.url("schedulers", "pndm_sd15.json"))
        let ddpm = try DDPMScheduler(config: config)
        let latents = try f.get("latents"), noise = try f.get("noise"), t = try f.get("timesteps")
        try expectEqual(ddpm.schedule.betas, try f.get("betas"), "betas")
        try expectEqual(ddpm.schedule.alphasCumprod, try f.get("alphas_cumprod"), "alphas_cumprod")
        try expectEqual(try ddpm.addNoise(latents, noise: noise, timesteps: t), try f.get("noisy"), "add_noise")
        try expectEqual(try ddpm.addNoise(latents.to(.float64), noise: noise.to(.float64), timesteps: t),
                        try f.get("noisy_f64"), "add_noise float64")
        try expectEqual(try ddpm.velocity(latents, noise: noise, timesteps: t), try f.get("velocity"), "get_velocity")
        try expectEqual(try ddpm.snr(t), try f.get("snr"), "compute_snr")
    }

    /// The file's omissions resolve to each class's own defaults (formats.md §1.7).
    @Test func sd15ConfigTakesEachClassDefaults() throws {
        let config = try SchedulerConfig.load(from: try Fixtures.url("schedulers", "pndm_sd15.json"))
        #expect(config.className == "PNDMScheduler" && config.predictionType == nil && config.timestepSpacing == nil)
        let pndm = try config.makeScheduler()
        #expect(pndm is PNDMScheduler)
        let ddim = try #require(try config.makeScheduler(.ddim) as? DDIMScheduler)
        #expect(ddim.timestepSpacing == .leading && ddim.stepsOffset == 1 && !ddim.clipSample)
        #expect(ddim.finalAlphaCumprod == ddim.schedule.alphasCumprodValues[0])
        let euler = try #require(try config.makeScheduler(.eulerAncestralDiscrete) as? EulerAncestralDiscreteScheduler)
        #expect(euler.timestepSpacing == .linspace && euler.predictionType == .epsilon)
        let dpm = try #require(try config.makeScheduler(.dpmSolverMultistep) as? DPMSolverMultistepScheduler)
        #expect(dpm.algorithmType == .dpmsolverPlusPlus && dpm.solverOrder == 2 && !dpm.useKarrasSigmas)
    }

    @Test func unsupportedValuesAreRejectedByName() throws {
        func config(_ json: String) throws -> SchedulerConfig { try SchedulerConfig(json: Data(json.utf8)) }
        let cases: [(String, SchedulerKind, String)] = [
            (#"{"prediction_type": "flow"}"#, .ddim, "prediction_type"),
            (#"{"prediction_type": "sample"}"#, .eulerAncestralDiscrete, "prediction_type"),
            (#"{"beta_schedule": "sigmoid"}"#, .ddpm, "beta_schedule"),
            (#"{"beta_schedule": "cubic"}"#, .eulerDiscrete, "beta_schedule"),
            (#"{"timestep_spacing": "quadratic"}"#, .pndm, "timestep_spacing"),
            (#"{"algorithm_type": "dpmsolver"}"#, .dpmSolverMultistep, "algorithm_type"),
            (#"{"use_exponential_sigmas": true}"#, .eulerDiscrete, "use_exponential_sigmas"),
            (#"{"variance_type": "learned_range"}"#, .ddpm, "variance_type"),
            (#"{"thresholding": true}"#, .dpmSolverMultistep, "thresholding"),
        ]
        for (json, kind, key) in cases {
            let c = try config(json)
            #expect { _ = try c.makeScheduler(kind) } throws: { error in
                let text = "\(error)"
                return text.contains(key) && text.contains(kind.rawValue)
            }
        }
        #expect(throws: SchedulerError.self) { _ = try config("{}").makeScheduler() }
        #expect(throws: SchedulerError.self) { _ = try config(#"{"_class_name": "LMSDiscreteScheduler"}"#).makeScheduler() }
        let bad = try temporaryDirectory().appendingPathComponent("scheduler_config.json")
        try Data(#"{"beta_start": "small"}"#.utf8).write(to: bad)
        #expect { _ = try SchedulerConfig.load(from: bad) } throws: { "\($0)".contains(bad.path) }
        let ddim = try DDIMScheduler()
        #expect(throws: SchedulerError.self) { try ddim.setTimesteps(0) }
        #expect(throws: SchedulerError.self) { try ddim.setTimesteps(1001) }
        #expect(throws: SchedulerError.self) {
            _ = try ddim.step(modelOutput: try Tensor.zeros([1]), timestep: 10, sample: try Tensor.zeros([1]), generator: nil)
        }
    }
}
