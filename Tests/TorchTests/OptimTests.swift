import Foundation
import Testing
import TestSupport
@testable import Torch

/// The run that reference/fixtures/optim.py made with torch.optim.AdamW: its configuration comes
/// from the fixture's metadata, so both sides use the same inputs.
private struct AdamWFixture {
    struct Group: Decodable {
        let name: String, lr: Double, betas: [Double], eps: Double, weight_decay: Double, params: [String]
    }
    struct Config: Decodable { let steps: Int, schedule: LRSchedule, groups: [Group] }

    let tensors: [String: Tensor]
    let config: Config

    init() throws {
        let (tensors, metadata) = try Safetensors.load(Fixtures.url("optim", "adamw.safetensors"))
        self.tensors = tensors
        config = try JSONDecoder().decode(Config.self, from: Data((metadata["config"] ?? "").utf8))
    }

    var names: [String] { config.groups.flatMap(\.params) }

    /// Fresh parameters with the initial values, in their own (writable) memory.
    func makeParameters() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in names { out[name] = try tensors.get("init.\(name)").clone().requiresGrad(true) }
        return out
    }

    func makeOptimizer(_ params: [String: Tensor]) throws -> AdamW {
        try AdamW(groups: config.groups.map { g in
            AdamW.ParamGroup(name: g.name, parameters: try g.params.map { ($0, try params.get($0)) }, lr: g.lr,
                             betas: (g.betas[0], g.betas[1]), eps: g.eps, weightDecay: g.weight_decay)
        })
    }

    /// The training loop of the reference: gradients of step k (d/dp sum(p·g) is exactly g), the
    /// scheduled learning rates, one optimizer step.
    func train(_ optimizer: AdamW, _ params: [String: Tensor], steps: Range<Int>,
               afterStep: (Int) throws -> Void = { _ in }) throws {
        for step in steps {
            try optimizer.zeroGrad()
            for (name, p) in params {
                if let g = tensors["grad.\(step).\(name)"] { try (p * g).sum().backward() }
            }
            try optimizer.setLearningRates(schedule: config.schedule, step: step)
            try optimizer.step()
            try afterStep(step)
        }
    }
}

@Suite struct OptimTests {
    // MARK: AdamW

    @Test func adamwStepsMatchPyTorchFused() throws {
        let fx = try AdamWFixture()
        let params = try fx.makeParameters()
        let optimizer = try fx.makeOptimizer(params)
        let lrs = try fx.tensors.get("lrs")
        try fx.train(optimizer, params, steps: 0..<fx.config.steps) { step in
            // The schedule's learning rates are the ones LambdaLR set, to the bit.
            try expectEqual(try Tensor(optimizer.learningRates), try lrs.select(dim: 0, index: step), "lr at step \(step)")
            for name in fx.names {
                let p = try params.get(name)
                // Same kernel, same inputs: bit-identical, bfloat16 included.
                try expectEqual(try p.detach(), try fx.tensors.get("step\(step).\(name)"), "\(name) after step \(step)")
                // PyTorch's for-loop AdamW rounds differently; float32 parameters agree within 1e-6.
                if let loop = fx.tensors["forloop.step\(step).\(name)"] {
                    try expectClose(try p.detach(), loop, atol: 1e-6, "\(name) vs for-loop after step \(step)")
                }
            }
        }
        // Moments and step counts equal torch's optimizer.state (te.r and unet.b skipped two steps).
        let (state, _) = try optimizer.stateDict()
        for name in fx.names {
            for key in ["exp_avg", "exp_avg_sq", "step"] {
                try expectEqual(try state.get("\(name).\(key)"), try fx.tensors.get("state.\(name).\(key)"), "\(name).\(key)")
            }
        }
        #expect(try optimizer.stepCount(of: "te.r") == fx.config.steps - 2)
        #expect(try optimizer.stepCount(of: "unet.a") == fx.config.steps)
    }

    @Test func resumingFromSavedStateIsBitExact() throws {
        let fx = try AdamWFixture()
        let n = fx.config.steps, k = 3
        // te.r has no state yet after k = 1 step, so both "state present" and "state absent" resume.
        for split in [1, k] {
            let straightParams = try fx.makeParameters()
            let straight = try fx.makeOptimizer(straightParams)
            try fx.train(straight, straightParams, steps: 0..<n)

            let firstParams = try fx.makeParameters()
            let first = try fx.makeOptimizer(firstParams)
            try fx.train(first, firstParams, steps: 0..<split)
            let dir = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            try first.save(to: dir.appendingPathComponent("optimizer.safetensors"))
            try Safetensors.save(firstParams, to: dir.appendingPathComponent("params.safetensors"))

            // A new process would start here: parameters and optimizer from the files only.
            let saved = try Safetensors.load(dir.appendingPathComponent("params.safetensors")).tensors
            var resumedParams: [String: Tensor] = [:]
            for (name, t) in saved { resumedParams[name] = try t.clone().requiresGrad(true) }
            let resumed = try fx.makeOptimizer(resumedParams)
            try resumed.load(contentsOf: dir.appendingPathComponent("optimizer.safetensors"))
            #expect(resumed.learningRates == first.learningRates)
            try fx.train(resumed, resumedParams, steps: split..<n)

            for name in fx.names {
                try expectEqual(try resumedParams.get(name).detach(), try straightParams.get(name).detach(),
                                "\(name), resumed after \(split) steps")
            }
            let (a, _) = try resumed.stateDict(), (b, _) = try straight.stateDict()
            #expect(Set(a.keys) == Set(b.keys))
            for (key, t) in b { try expectEqual(try a.get(key), t, "state \(key), resumed after \(split) steps") }
        }
    }

    @Test func loadRestoresGroupHyperparameters() throws {
        let fx = try AdamWFixture()
        let params = try fx.makeParameters()
        let source = try fx.makeOptimizer(params)
        try fx.train(source, params, steps: 0..<2)
        let (tensors, metadata) = try source.stateDict()
        // A target built with other hyperparameters takes the saved ones, as torch's load_state_dict does.
        let target = try AdamW(groups: fx.config.groups.map { g in
            AdamW.ParamGroup(name: g.name, parameters: try g.params.map { ($0, try params.get($0)) }, lr: 0.5,
                             betas: (0.5, 0.5), eps: 0.5, weightDecay: 0.5)
        })
        try target.load(stateDict: tensors, metadata: metadata)
        for (s, t) in zip(source.groups, target.groups) {
            #expect(s.lr == t.lr && s.initialLR == t.initialLR && s.eps == t.eps && s.weightDecay == t.weightDecay)
            #expect(s.betas == t.betas)
        }
    }

    @Test func loadRejectsMismatchedStateNamingTheParameter() throws {
        let fx = try AdamWFixture()
        let params = try fx.makeParameters()
        let source = try fx.makeOptimizer(params)
        try fx.train(source, params, steps: 0..<3)
        let (tensors, metadata) = try source.stateDict()

        func problems(_ optimizer: AdamW, _ t: [String: Tensor], _ m: [String: String]) -> [String] {
            do {
                try optimizer.load(stateDict: t, metadata: m)
                Issue.record("load accepted a mismatched state")
                return []
            } catch let error as OptimizerStateError {
                return error.problems
            } catch {
                Issue.record("unexpected error \(error)")
                return []
            }
        }
        func optimizer(replacing name: String, with tensor: Tensor?) throws -> AdamW {
            try AdamW(groups: fx.config.groups.map { g in
                let ps = try g.params.compactMap { n -> (String, Tensor)? in
                    n == name ? tensor.map { (n, $0) } : (n, try params.get(n))
                }
                return AdamW.ParamGroup(name: g.name, parameters: ps, lr: g.lr)
            })
        }

        // A parameter whose shape changed (a LoRA of another rank): both shapes, by name.
        let shape = try params.get("unet.a").shape, other = [shape[0] + 1, shape[1]]
        let reshaped = try optimizer(replacing: "unet.a", with: try Tensor.zeros(other).requiresGrad(true))
        let shapeProblems = problems(reshaped, tensors, metadata)
        #expect(shapeProblems.contains { $0.contains("'unet.a'") && $0.contains("\(shape)") && $0.contains("\(other)") })
        #expect(shapeProblems.count == 2)  // exp_avg and exp_avg_sq
        // The failed load changed nothing.
        #expect(try reshaped.stepCount(of: "unet.b") == 0)

        // A parameter the state has but the optimizer lacks, and its tensors.
        let fewer = try optimizer(replacing: "te.r", with: nil)
        let missing = problems(fewer, tensors, metadata)
        #expect(missing.contains { $0.contains("'te.r'") && $0.contains("lacks") })
        #expect(missing.contains { $0.contains("unexpected tensor 'te.r.exp_avg'") })

        // A state tensor missing from the file.
        var partial = tensors
        partial["unet.c.exp_avg_sq"] = nil
        let partialProblems = problems(try fx.makeOptimizer(params), partial, metadata)
        #expect(partialProblems == ["parameter 'unet.c': the state lacks 'unet.c.exp_avg_sq'"])

        // Group names, counts, and files that are not an AdamW state at all.
        let renamed = try AdamW(groups: fx.config.groups.map { g in
            AdamW.ParamGroup(name: g.name + "_x", parameters: try g.params.map { ($0, try params.get($0)) }, lr: g.lr)
        })
        #expect(problems(renamed, tensors, metadata).contains { $0.contains("group 'unet_x' is named 'unet'") })
        let notAdamW = problems(try fx.makeOptimizer(params), tensors, [:])
        #expect(notAdamW.count == 1 && notAdamW[0].contains("not an AdamW state"))
        var badJSON = metadata
        badJSON["param_groups"] = "{"
        #expect(problems(try fx.makeOptimizer(params), tensors, badJSON).first?.contains("param_groups") == true)
    }

    @Test func adamwRejectsInvalidConstruction() throws {
        let p = try Tensor.zeros([2]).requiresGrad(true)
        let bad: [(String, () throws -> AdamW)] = [
            ("negative lr", { try AdamW(parameters: [("p", p)], lr: -1) }),
            ("beta1 = 1", { try AdamW(parameters: [("p", p)], betas: (1, 0.999)) }),
            ("NaN weight decay", { try AdamW(parameters: [("p", p)], weightDecay: .nan) }),
            ("integer parameter", { try AdamW(parameters: [("i", try Tensor([1, 2] as [Int64]))]) }),
            ("duplicate name", { try AdamW(parameters: [("p", p), ("p", p)]) }),
        ]
        for (label, make) in bad {
            #expect(throws: TorchError.self, "\(label)") { _ = try make() }
        }
        let ok = try AdamW(parameters: [("p", p)])
        #expect(throws: TorchError.self) { try ok.setLearningRate(1e-3, group: 1) }
        #expect(throws: TorchError.self) { try ok.setLearningRate(-1) }
        #expect(ok.groups[0].weightDecay == 0.01)  // torch.optim.AdamW's default
    }

    @Test func zeroGradDropsGradientsAndStepSkipsParametersWithoutOne() throws {
        let a = try Tensor([1, 2] as [Float]).requiresGrad(true)
        let b = try Tensor([3, 4] as [Float]).requiresGrad(true)
        let optimizer = try AdamW(parameters: [("a", a), ("b", b)], lr: 0.1)
        try (a * 2.0).sum().backward()
        try optimizer.step()
        // b had no gradient: neither it nor its state moves (weight decay included).
        #expect(try b.detach().toArray(Float.self) == [3, 4])
        #expect(try optimizer.stepCount(of: "b") == 0)
        #expect(try optimizer.stepCount(of: "a") == 1)
        #expect(try optimizer.stateDict().tensors.keys.sorted() == ["a.exp_avg", "a.exp_avg_sq", "a.step"])
        try optimizer.zeroGrad()
        #expect(a.grad == nil && b.grad == nil)
    }

    // MARK: Learning-rate schedules

    private struct ScheduleSpec: Decodable {
        let name: String
        let warmup_steps: Int?, training_steps: Int?, num_cycles: Int?
        let power: Double?, lr_end: Double?, step_rules: String?
    }
    private struct ScheduleConfig: Decodable { let base_lrs: [Double], steps: Int, schedules: [String: ScheduleSpec] }

    @Test func schedulesMatchDiffusersLambdaLR() throws {
        let (tensors, metadata) = try Safetensors.load(Fixtures.url("optim", "schedules.safetensors"))
        let config = try JSONDecoder().decode(ScheduleConfig.self, from: Data((metadata["config"] ?? "").utf8))
        #expect(config.schedules.count == 9)
        for (key, spec) in config.schedules.sorted(by: { $0.key < $1.key }) {
            // polynomial divides by optimizer.defaults["lr"], which the reference set to the first group's.
            let schedule = try LRSchedule(
                try .init(parsing: spec.name), warmupSteps: spec.warmup_steps ?? 0,
                trainingSteps: spec.training_steps ?? 0, numCycles: spec.num_cycles ?? 1, power: spec.power ?? 1,
                lrEnd: spec.lr_end ?? 1e-7, initialLR: config.base_lrs[0], stepRules: spec.step_rules)
            var lrs: [Double] = []
            for step in 0..<config.steps {
                for base in config.base_lrs { lrs.append(schedule.lr(step: step, baseLR: base)) }
            }
            // Same formulas in the same order on the same libm: exact.
            try expectEqual(try Tensor(lrs, shape: [config.steps, config.base_lrs.count]), try tensors.get(key), key)
        }
    }

    @Test func scheduleNamesParseAndRoundTrip() throws {
        #expect(try LRSchedule.Kind(parsing: "cosine_with_restarts") == .cosineWithRestarts)
        #expect(LRSchedule.Kind.allCases.map(\.rawValue) == [
            "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial",
            "piecewise_constant",
        ])
        do {
            _ = try LRSchedule.Kind(parsing: "cosine_annealing")
            Issue.record("an unknown name parsed")
        } catch let error as LRScheduleError {
            #expect(error.description.contains("'cosine_annealing'"))
            #expect(error.description.contains("constant_with_warmup, linear, cosine, cosine_with_restarts"))
        }
        let json = #"{"name": "cosine_with_restarts", "warmup_steps": 100, "training_steps": 1000, "num_cycles": 3}"#
        let decoded = try JSONDecoder().decode(LRSchedule.self, from: Data(json.utf8))
        #expect(decoded == (try LRSchedule(.cosineWithRestarts, warmupSteps: 100, trainingSteps: 1000, numCycles: 3)))
        let again = try JSONDecoder().decode(LRSchedule.self, from: try JSONEncoder().encode(decoded))
        #expect(again == decoded)
        #expect(throws: LRScheduleError.self) {
            try JSONDecoder().decode(LRSchedule.self, from: Data(#"{"name": "step"}"#.utf8))
        }
        // Warmup starts from 0 (LambdaLR's first step), as in diffusers.
        #expect(try LRSchedule(.constantWithWarmup, warmupSteps: 4).multiplier(step: 0) == 0)
    }

    @Test func invalidSchedulesAreRejected() throws {
        #expect(throws: LRScheduleError.self) { try LRSchedule(.linear, warmupSteps: -1, trainingSteps: 10) }
        #expect(throws: LRScheduleError.self) { try LRSchedule(.polynomial, trainingSteps: 10) }  // no initial lr
        #expect(throws: LRScheduleError.self) {
            try LRSchedule(.polynomial, trainingSteps: 10, lrEnd: 1e-3, initialLR: 1e-4)  // diffusers: lr_end too big
        }
        #expect(throws: LRScheduleError.self) { try LRSchedule(.piecewiseConstant) }
        for rules in ["1:10,x", "1-10,0.5", "1:ten,0.5", ""] {
            #expect(throws: LRScheduleError.self, "\(rules)") { try LRSchedule(.piecewiseConstant, stepRules: rules) }
        }
        // Warmup as long as training: the polynomial schedule ends at lr_end instead of dividing by 0.
        let flat = try LRSchedule(.polynomial, warmupSteps: 5, trainingSteps: 5, lrEnd: 1e-6, initialLR: 1e-4)
        #expect(flat.multiplier(step: 5) == 1e-6 / 1e-4)
    }

    // MARK: Gradient clipping

    private struct ClipCase: Decodable {
        let max_norm: Double
        let norm_type: NormType
        enum NormType: Decodable {
            case finite(Double), infinity
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                self = (try? c.decode(String.self)) == "inf" ? .infinity : .finite(try c.decode(Double.self))
            }
            var value: Double { if case .finite(let v) = self { v } else { .infinity } }
        }
    }
    private struct ClipConfig: Decodable { let shapes: [[Int]], cases: [String: ClipCase] }

    @Test func clipGradNormMatchesPyTorch() throws {
        let (f, metadata) = try Safetensors.load(Fixtures.url("optim", "clip.safetensors"))
        let config = try JSONDecoder().decode(ClipConfig.self, from: Data((metadata["config"] ?? "").utf8))
        #expect(config.cases.count == 5)
        for (name, c) in config.cases.sorted(by: { $0.key < $1.key }) {
            let params = try config.shapes.map { try Tensor.zeros($0).requiresGrad(true) }
            // Every parameter but the last gets the reference gradient (d/dp sum(p·g) is exactly g).
            for (i, p) in params.dropLast().enumerated() { try (p * f.get("grad.\(i)")).sum().backward() }
            let total = try clipGradNorm(params, maxNorm: c.max_norm, normType: c.norm_type.value)
            // Same ATen reductions in the same order: the norm and the scaled gradients are exact.
            #expect(total == (try f.get("\(name).total").item()), "\(name) total norm")
            for (i, p) in params.dropLast().enumerated() {
                guard let grad = p.grad else {
                    Issue.record("\(name): gradient \(i) vanished")
                    continue
                }
                try expectEqual(grad, try f.get("\(name).grad.\(i)"), "\(name) gradient \(i)")
            }
            #expect(params.last?.grad == nil, "a parameter without a gradient keeps none")
        }
        // Unclipped means untouched: the reference's multiply by 1.0 leaves the gradients as they were.
        try expectEqual(try f.get("unclipped_l2.grad.0"), try f.get("grad.0"), "unclipped gradient")
        let none = try clipGradNorm([try Tensor.zeros([2]).requiresGrad(true)], maxNorm: 1)
        #expect(none == (try f.get("empty.total").item()))
    }
}
