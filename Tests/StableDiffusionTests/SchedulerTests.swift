import Foundation
import Testing
import TestSupport
import Torch
@testable import StableDiffusion

/// Parity with diffusers' schedulers (reference/fixtures/schedulers.py): each case is a
/// scheduler_config.json, a scheduler class built from it as `from_config` does, a step count, and a
/// trajectory from fixed model outputs. Timesteps, sigmas, init_noise_sigma, ᾱ and every scaled input and
/// step output must be bit-identical to diffusers' (tolerance 0; the stochastic samplers draw their noise
/// from a Generator with the fixture's seed). The one exception is LMS's trajectory: its coefficients are
/// integrals that diffusers takes numerically (see `lmsCoefficients`).
@Suite struct SchedulerTests {
    static let cases = [
        "pndm_sd15", "pndm_prk", "pndm_linspace_vpred", "pndm_trailing",
        "ddim_sd15", "ddim_eta", "ddim_trailing_vpred_zsnr", "ddim_linspace_cosine_clip", "ddim_trained_betas_null_clip",
        "ddpm_sd15", "ddpm_small_log", "ddpm_large_trailing_sample",
        "euler_sd15", "euler_leading_vpred", "euler_trailing", "euler_karras", "euler_karras_bounds",
        "euler_a_sd15", "euler_a_leading_vpred", "euler_a_500_steps", "euler_a_trailing_zsnr",
        "dpm_sd15", "dpm_sd15_10", "dpm_karras", "dpm_karras_vpred", "dpm_leading", "dpm_trailing_heun",
        "dpm_order3", "dpm_sde", "dpm_sde_karras_order3_heun", "dpm_cosine_clipped", "dpm_cosine_karras",
        "dpm_sde_karras",
        "heun_sd15", "heun_karras", "heun_karras_bounds", "heun_leading_vpred", "heun_trailing_sample_clip",
        "lms_sd15", "lms_karras", "lms_trailing_vpred", "lms_leading_sample",
        "unipc_sd15", "unipc_sd15_8", "unipc_karras", "unipc_trailing_vpred_zsnr", "unipc_order3_bh1_sigma_min",
        "unipc_noise_leading_no_corrector", "unipc_noise_sample_order3",
        "kdpm2_sd15", "kdpm2_karras", "kdpm2_leading_vpred", "kdpm2_trailing",
        "kdpm2_a_sd15", "kdpm2_a_karras", "kdpm2_a_trailing_vpred", "kdpm2_a_leading",
    ]

    /// LMS's trajectory tolerance: diffusers integrates each coefficient with scipy's quad over a float32
    /// integrand, Inkwell exactly, so a coefficient can differ in its last float32 bit and the samples
    /// (|x| up to ~60 at σ_max ≈ 14.6) by a few float32 ulps (seen: 4.8e-6, one ulp at |x| ≥ 32).
    static let lmsTolerance = 2e-5

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
        try expectTimesteps(scheduler, config, try f.get("timesteps"), name)
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
        let lms = scheduler is LMSDiscreteScheduler
        for (i, t) in scheduler.timesteps.enumerated() {
            let scaled = try scheduler.scaleModelInput(x, timestep: t)
            if lms {
                try expectClose(scaled, try f.get("scaled.\(i)"), atol: Self.lmsTolerance, "\(name) scaled.\(i)")
            } else {
                try expectEqual(scaled, try f.get("scaled.\(i)"), "\(name) scaled.\(i)")
            }
            x = try scheduler.step(modelOutput: try f.get("model_output.\(i)"), timestep: t, sample: x,
                                   generator: generator)
            if lms {
                try expectClose(x, try f.get("prev.\(i)"), atol: Self.lmsTolerance, "\(name) prev.\(i)")
            } else {
                try expectEqual(x, try f.get("prev.\(i)"), "\(name) prev.\(i)")
            }
        }
    }

    /// LMS's integrated coefficients: exact integration of the Lagrange basis polynomials here, scipy's quad
    /// in diffusers, on an integrand it evaluates in float32 (τ rounded to float32, then up to seven rounded
    /// differences, quotients and products, each off by at most 2⁻²⁴). They must agree to that float32
    /// rounding: four float32 ulps (relative 2⁻²¹; the SD schedules differ by at most 1.3 ulps).
    @Test(arguments: cases.filter { $0.hasPrefix("lms_") }) func lmsCoefficients(_ name: String) throws {
        let meta = try #require(try Self.loadCases()[name])
        let f = try Fixtures.tensors("schedulers", name)
        let config = try SchedulerConfig.load(from: try Fixtures.url("schedulers", name + ".json"))
        let lms = try #require(try config.makeScheduler(.lmsDiscrete) as? LMSDiscreteScheduler)
        try lms.setTimesteps(meta.steps)
        var worst = 0.0
        for i in 0..<meta.steps {
            let expected = try f.get("lms_coefficients.\(i)").toArray(Double.self)
            let actual = lms.coefficients(at: i)
            #expect(actual.count == expected.count && actual.count == min(i + 1, 4), "\(name) step \(i)")
            for (a, e) in zip(actual, expected) { worst = max(worst, abs(a - e) / max(abs(e), 1e-30)) }
        }
        #expect(worst <= 4.0 / 8_388_608, "\(name): worst relative difference \(worst)")
    }

    /// Timesteps exactly as diffusers holds them (dtype and values), except those it derives with
    /// `_sigma_to_t` from np.log of float32 σ (Karras float32 timesteps; KDPM2's midpoints, every second
    /// entry): numpy's SIMD float32 log and libtorch's (used here) differ in the last bit for about one input
    /// in six. t interpolates linearly in log σ, so the three logs it reads, each off by at most one ulp
    /// (2.4e-7 for |log σ| < 4), over the smallest log-σ spacing of SD's schedule (0.0033) bound the
    /// difference by 2.5e-4 timesteps (seen: up to 6.1e-5, in heun_karras and the KDPM2 cases; Euler's and
    /// DPM-Solver's Karras schedules come out identical).
    func expectTimesteps(_ scheduler: any Scheduler, _ config: SchedulerConfig, _ expected: Tensor,
                         _ name: String) throws {
        let actual = try scheduler.timestepsTensor()
        guard actual.shape == expected.shape, actual.dtype == expected.dtype else {
            Issue.record("\(name) timesteps: \(actual.shape) \(actual.dtype) != expected \(expected.shape) \(expected.dtype)")
            return
        }
        let karras = config.useKarrasSigmas == true && actual.dtype == .float32
        let midpoints = scheduler is KDPM2DiscreteScheduler || scheduler is KDPM2AncestralDiscreteScheduler
        let values = try actual.to(.float64).toArray(Double.self)
        for (i, e) in try expected.to(.float64).toArray(Double.self).enumerated() {
            let tolerance = karras || (midpoints && i % 2 == 1) ? 2.5e-4 : 0
            #expect(abs(values[i] - e) <= tolerance, "\(name) timesteps[\(i)]: \(values[i]) != \(e)")
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
        // UniPC as pipelines build it from this file: bh2, order 2, data prediction, the corrector on.
        let unipc = try #require(try config.makeScheduler(.uniPCMultistep) as? UniPCMultistepScheduler)
        #expect(unipc.solverType == .bh2 && unipc.solverOrder == 2 && unipc.predictX0 && unipc.disableCorrector.isEmpty)
        #expect(unipc.timestepSpacing == .linspace && unipc.lowerOrderFinal && unipc.predictionType == .epsilon)
        let heun = try #require(try config.makeScheduler(.heunDiscrete) as? HeunDiscreteScheduler)
        #expect(heun.timestepSpacing == .linspace && !heun.clipSample && !heun.useKarrasSigmas)
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
            (#"{"beta_schedule": "exp"}"#, .heunDiscrete, "beta_schedule"),
            (#"{"use_exponential_sigmas": true}"#, .heunDiscrete, "use_exponential_sigmas"),
            (#"{"use_beta_sigmas": true}"#, .lmsDiscrete, "use_beta_sigmas"),
            (#"{"timestep_spacing": "karras"}"#, .lmsDiscrete, "timestep_spacing"),
            (#"{"prediction_type": "sample"}"#, .kdpm2Discrete, "prediction_type"),
            (#"{"prediction_type": "sample"}"#, .kdpm2AncestralDiscrete, "prediction_type"),
            (#"{"use_beta_sigmas": true}"#, .kdpm2AncestralDiscrete, "use_beta_sigmas"),
            (#"{"solver_type": "bh3"}"#, .uniPCMultistep, "solver_type"),
            (#"{"solver_order": 4}"#, .uniPCMultistep, "solver_order"),
            (#"{"prediction_type": "flow_prediction"}"#, .uniPCMultistep, "prediction_type"),
            (#"{"thresholding": true}"#, .uniPCMultistep, "thresholding"),
            (#"{"use_flow_sigmas": true}"#, .uniPCMultistep, "use_flow_sigmas"),
            (#"{"use_dynamic_shifting": true}"#, .uniPCMultistep, "use_dynamic_shifting"),
            (#"{"final_sigmas_type": "one"}"#, .uniPCMultistep, "final_sigmas_type"),
        ]
        for (json, kind, key) in cases {
            let c = try config(json)
            #expect { _ = try c.makeScheduler(kind) } throws: { error in
                let text = "\(error)"
                return text.contains(key) && text.contains(kind.rawValue)
            }
        }
        #expect(throws: SchedulerError.self) { _ = try config("{}").makeScheduler() }
        #expect(throws: SchedulerError.self) { _ = try config(#"{"_class_name": "DPMSolverSDEScheduler"}"#).makeScheduler() }
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
