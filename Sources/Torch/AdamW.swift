// torch.optim.AdamW(fused=True): decoupled weight decay and bias correction in ATen's _fused_adamw_
// kernel, parameter groups with their own hyperparameters, and a state that round-trips through
// safetensors so that a resumed run continues bit-for-bit.
import CTorch
import Foundation

/// Why a saved optimizer state cannot be loaded; every problem found, each naming its parameter.
public struct OptimizerStateError: Error, CustomStringConvertible, Equatable {
    public let problems: [String]
    public var description: String {
        "the optimizer state does not fit this optimizer:\n  " + problems.joined(separator: "\n  ")
    }
}

public final class AdamW {
    /// Parameters that share hyperparameters (the trainer gives text-encoder LoRA its own learning rate).
    public struct ParamGroup {
        /// Names the group in errors and in the saved state.
        public let name: String
        /// Parameters by unique name (the state is saved under these names).
        public let parameters: [(name: String, tensor: Tensor)]
        /// The learning rate of the next step.
        public internal(set) var lr: Double
        /// The learning rate a schedule scales (LambdaLR's `initial_lr`).
        public internal(set) var initialLR: Double
        public internal(set) var betas: (Double, Double)
        public internal(set) var eps: Double
        /// Decoupled: each step multiplies the parameter by 1 − lr · weightDecay.
        public internal(set) var weightDecay: Double

        /// PyTorch's defaults apart from the learning rate, which a LoRA run always chooses.
        public init(name: String, parameters: [(String, Tensor)], lr: Double, betas: (Double, Double) = (0.9, 0.999),
                    eps: Double = 1e-8, weightDecay: Double = 0.01) {
            self.name = name
            self.parameters = parameters.map { (name: $0.0, tensor: $0.1) }
            self.lr = lr
            self.initialLR = lr
            self.betas = betas
            self.eps = eps
            self.weightDecay = weightDecay
        }

        /// Parameters from a dictionary, in key order.
        public init(name: String, parameters: [String: Tensor], lr: Double, betas: (Double, Double) = (0.9, 0.999),
                    eps: Double = 1e-8, weightDecay: Double = 0.01) {
            self.init(name: name, parameters: parameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                      lr: lr, betas: betas, eps: eps, weightDecay: weightDecay)
        }
    }

    /// The moments and step count of one parameter, created at its first gradient.
    struct ParamState {
        let expAvg: Tensor
        let expAvgSq: Tensor
        /// float32 scalar on the parameter's device, as the fused kernel reads it.
        let step: Tensor
    }

    public private(set) var groups: [ParamGroup]
    private var state: [String: ParamState] = [:]

    public init(groups: [ParamGroup]) throws {
        var problems: [String] = []
        var seen = Set<String>(), groupNames = Set<String>()
        for group in groups {
            if !groupNames.insert(group.name).inserted { problems.append("group name '\(group.name)' is used twice") }
            problems += Self.hyperparameterProblems(group: group.name, lr: group.lr, betas: group.betas,
                                                    eps: group.eps, weightDecay: group.weightDecay)
            for (name, tensor) in group.parameters {
                if !seen.insert(name).inserted { problems.append("parameter '\(name)' appears more than once") }
                // The fused kernel takes floating-point tensors only, as torch's fused=True check says.
                if !tensor.dtype.isFloatingPoint {
                    problems.append("parameter '\(name)' has dtype \(tensor.dtype); AdamW needs a floating-point one")
                }
            }
        }
        guard problems.isEmpty else { throw TorchError.invalidArgument("AdamW: " + problems.joined(separator: "; ")) }
        self.groups = groups
    }

    /// One group named "default".
    public convenience init(parameters: [(String, Tensor)], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
                            eps: Double = 1e-8, weightDecay: Double = 0.01) throws {
        try self.init(groups: [ParamGroup(name: "default", parameters: parameters, lr: lr, betas: betas, eps: eps,
                                          weightDecay: weightDecay)])
    }

    /// torch.optim.Adam's argument checks.
    static func hyperparameterProblems(group: String, lr: Double, betas: (Double, Double), eps: Double,
                                       weightDecay: Double) -> [String] {
        var out: [String] = []
        if !(lr >= 0 && lr.isFinite) { out.append("group '\(group)': invalid learning rate \(lr)") }
        if !(eps >= 0 && eps.isFinite) { out.append("group '\(group)': invalid epsilon \(eps)") }
        if !(betas.0 >= 0 && betas.0 < 1) { out.append("group '\(group)': invalid beta1 \(betas.0)") }
        if !(betas.1 >= 0 && betas.1 < 1) { out.append("group '\(group)': invalid beta2 \(betas.1)") }
        if !(weightDecay >= 0 && weightDecay.isFinite) {
            out.append("group '\(group)': invalid weight decay \(weightDecay)")
        }
        return out
    }

    /// Every parameter of every group (for `clipGradNorm`).
    public var parameters: [Tensor] { groups.flatMap { $0.parameters.map(\.tensor) } }

    /// The learning rate of each group for the next step.
    public var learningRates: [Double] { groups.map(\.lr) }

    // MARK: Learning rate

    /// Sets the learning rate of one group, or of every group when `group` is nil.
    public func setLearningRate(_ lr: Double, group: Int? = nil) throws {
        guard lr >= 0, lr.isFinite else { throw TorchError.invalidArgument("AdamW: invalid learning rate \(lr)") }
        if let group {
            guard groups.indices.contains(group) else {
                throw TorchError.invalidArgument("AdamW has \(groups.count) parameter groups; there is no group \(group)")
            }
            groups[group].lr = lr
        } else {
            for i in groups.indices { groups[i].lr = lr }
        }
    }

    /// LambdaLR: every group's learning rate becomes its initial learning rate times `multiplier`.
    public func setLearningRates(multiplier: Double) throws {
        guard multiplier >= 0, multiplier.isFinite else {
            throw TorchError.invalidArgument("AdamW: invalid learning-rate multiplier \(multiplier)")
        }
        for i in groups.indices { groups[i].lr = groups[i].initialLR * multiplier }
    }

    /// The learning rates for optimizer step `step` (0 for the first), as diffusers' LambdaLR sets them.
    public func setLearningRates(schedule: LRSchedule, step: Int) throws {
        try setLearningRates(multiplier: schedule.multiplier(step: step))
    }

    // MARK: Stepping

    /// Tensors that go to one kernel call: torch.optim groups by device and dtype the same way.
    private struct Batch {
        let device: Device
        let dtype: DType
        var params: [Tensor] = [], grads: [Tensor] = [], expAvgs: [Tensor] = [], expAvgSqs: [Tensor] = []
        var steps: [Tensor] = []
    }

    /// One update of every parameter that has a gradient; the others, and their state, stay as they are.
    public func step() throws {
        for group in groups {
            var batches: [Batch] = []
            for (name, p) in group.parameters {
                guard let grad = p.grad else { continue }
                let s = try state[name] ?? Self.freshState(for: p)
                state[name] = s
                let device = p.device, dtype = p.dtype
                let index = batches.firstIndex { $0.device == device && $0.dtype == dtype } ?? batches.count
                if index == batches.count { batches.append(Batch(device: device, dtype: dtype)) }
                batches[index].params.append(p)
                batches[index].grads.append(grad)
                batches[index].expAvgs.append(s.expAvg)
                batches[index].expAvgSqs.append(s.expAvgSq)
                batches[index].steps.append(s.step)
            }
            for batch in batches { try Self.run(batch, group) }
        }
    }

    private static func run(_ b: Batch, _ g: ParamGroup) throws {
        func handles(_ ts: [Tensor]) -> [ct_tensor?] { ts.map(\.handle) }
        let p = handles(b.params), gr = handles(b.grads), m = handles(b.expAvgs)
        let v = handles(b.expAvgSqs), s = handles(b.steps)
        // The handles borrow from the Tensors in `b`, which must outlive the call.
        try withExtendedLifetime(b) {
            try check(p.withUnsafeBufferPointer { p in
                gr.withUnsafeBufferPointer { gr in
                    m.withUnsafeBufferPointer { m in
                        v.withUnsafeBufferPointer { v in
                            s.withUnsafeBufferPointer { s in
                                ct_fused_adamw_(p.baseAddress, gr.baseAddress, m.baseAddress, v.baseAddress, s.baseAddress,
                                                Int64(p.count), g.lr, g.betas.0, g.betas.1, g.weightDecay, g.eps)
                            }
                        }
                    }
                }
            })
        }
    }

    /// Zero moments in the parameter's layout (torch's zeros_like with preserve_format) and step 0.
    private static func freshState(for p: Tensor) throws -> ParamState {
        let m = try p.detach().clone(), v = try p.detach().clone()
        try m.zero_()
        try v.zero_()
        return ParamState(expAvg: m, expAvgSq: v, step: try Tensor.zeros([], dtype: .float32, device: p.device))
    }

    /// Drops every parameter's gradient (`zero_grad(set_to_none=True)`).
    public func zeroGrad() throws {
        for group in groups {
            for (_, p) in group.parameters { try p.zeroGrad() }
        }
    }

    /// The number of updates parameter `name` has had (0 before its first gradient).
    public func stepCount(of name: String) throws -> Int {
        guard let s = state[name] else { return 0 }
        return Int(try s.step.item())
    }
}

// MARK: - Saving and restoring

extension AdamW {
    static let formatName = "AdamW"
    static let formatVersion = "1"

    /// A group's hyperparameters and parameter names, kept as JSON in the file's metadata.
    struct GroupRecord: Codable, Equatable {
        let name: String
        let lr: Double
        let initialLR: Double
        let betas: [Double]
        let eps: Double
        let weightDecay: Double
        let params: [String]

        enum CodingKeys: String, CodingKey {
            case name, lr, initialLR = "initial_lr", betas, eps, weightDecay = "weight_decay", params
        }
    }

    /// The state as safetensors content: `<parameter>.exp_avg`, `.exp_avg_sq` and `.step` for every
    /// parameter that has had a gradient, and the groups in metadata. The tensors are the live state,
    /// not copies: save them before the next step.
    public func stateDict() throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        var tensors: [String: Tensor] = [:]
        for (name, s) in state {
            tensors[name + ".exp_avg"] = s.expAvg
            tensors[name + ".exp_avg_sq"] = s.expAvgSq
            tensors[name + ".step"] = s.step
        }
        let records = groups.map {
            GroupRecord(name: $0.name, lr: $0.lr, initialLR: $0.initialLR, betas: [$0.betas.0, $0.betas.1], eps: $0.eps,
                        weightDecay: $0.weightDecay, params: $0.parameters.map(\.name))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(records), as: UTF8.self)
        return (tensors, ["optimizer": Self.formatName, "format_version": Self.formatVersion, "param_groups": json])
    }

    /// Restores a state made by `stateDict()`: the moments, step counts and, as torch's
    /// load_state_dict does, each group's hyperparameters. Groups and parameter names must match and
    /// every shape must equal its parameter's; otherwise nothing changes and the error lists every
    /// mismatch. Tensors are copied to the parameter's device and dtype.
    public func load(stateDict tensors: [String: Tensor], metadata: [String: String]) throws {
        guard metadata["optimizer"] == Self.formatName else {
            throw OptimizerStateError(problems: [
                "not an AdamW state (metadata 'optimizer' is \(metadata["optimizer"].map { "'\($0)'" } ?? "missing"))"])
        }
        guard metadata["format_version"] == Self.formatVersion else {
            throw OptimizerStateError(problems: [
                "unsupported AdamW state version \(metadata["format_version"] ?? "(missing)"); this build reads \(Self.formatVersion)"])
        }
        guard let json = metadata["param_groups"],
              let records = try? JSONDecoder().decode([GroupRecord].self, from: Data(json.utf8)) else {
            throw OptimizerStateError(problems: ["metadata 'param_groups' is missing or not valid JSON"])
        }
        var problems = groupProblems(records)
        var loaded: [String: ParamState] = [:]
        var used = Set<String>()
        for group in groups {
            for (name, p) in group.parameters {
                let keys = [name + ".exp_avg", name + ".exp_avg_sq", name + ".step"]
                used.formUnion(keys)
                let found = keys.map { tensors[$0] }
                if found.allSatisfy({ $0 == nil }) { continue }  // never had a gradient
                guard let m = found[0], let v = found[1], let s = found[2] else {
                    let missing = zip(keys, found).filter { $0.1 == nil }.map { "'\($0.0)'" }
                    problems.append("parameter '\(name)': the state lacks \(missing.joined(separator: ", "))")
                    continue
                }
                var fits = true
                for (key, t) in zip(keys, [m, v]) {
                    if t.shape != p.shape {
                        problems.append("parameter '\(name)': '\(key)' has shape \(t.shape), the parameter has \(p.shape)")
                        fits = false
                    } else if !t.dtype.isFloatingPoint {
                        problems.append("parameter '\(name)': '\(key)' has dtype \(t.dtype), not a floating-point one")
                        fits = false
                    }
                }
                let stepValue = s.count == 1 ? try s.item() : -1
                if !(stepValue >= 0 && stepValue.isFinite) {
                    problems.append("parameter '\(name)': '\(keys[2])' must be one non-negative count, got shape \(s.shape)")
                    fits = false
                }
                guard fits else { continue }
                loaded[name] = ParamState(expAvg: try m.copied(to: p.device, dtype: p.dtype),
                                          expAvgSq: try v.copied(to: p.device, dtype: p.dtype),
                                          step: try s.reshape([]).copied(to: p.device, dtype: .float32))
            }
        }
        for key in tensors.keys.sorted() where !used.contains(key) {
            problems.append("unexpected tensor '\(key)': no parameter of this optimizer has that state")
        }
        guard problems.isEmpty else { throw OptimizerStateError(problems: problems) }
        // Only now, with every check passed, replace anything.
        for (i, record) in records.enumerated() {
            groups[i].lr = record.lr
            groups[i].initialLR = record.initialLR
            groups[i].betas = (record.betas[0], record.betas[1])
            groups[i].eps = record.eps
            groups[i].weightDecay = record.weightDecay
        }
        state = loaded
    }

    /// Group count, names, membership and hyperparameter validity against the saved records.
    private func groupProblems(_ records: [GroupRecord]) -> [String] {
        var problems: [String] = []
        if records.count != groups.count {
            problems.append("the state has \(records.count) parameter groups (\(records.map(\.name).joined(separator: ", "))), "
                            + "this optimizer \(groups.count) (\(groups.map(\.name).joined(separator: ", ")))")
        }
        for (group, record) in zip(groups, records) {
            if group.name != record.name {
                problems.append("group '\(group.name)' is named '\(record.name)' in the state")
            }
            let saved = Set(record.params), current = Set(group.parameters.map(\.name))
            for name in group.parameters.map(\.name) where !saved.contains(name) {
                problems.append("parameter '\(name)' of group '\(group.name)' is not in the state")
            }
            for name in record.params where !current.contains(name) {
                problems.append("the state has parameter '\(name)' in group '\(record.name)', which this optimizer lacks")
            }
            if record.betas.count != 2 {
                problems.append("group '\(record.name)': the state has \(record.betas.count) betas, not 2")
            } else {
                problems += Self.hyperparameterProblems(group: record.name, lr: record.lr,
                                                        betas: (record.betas[0], record.betas[1]),
                                                        eps: record.eps, weightDecay: record.weightDecay)
                if !(record.initialLR >= 0 && record.initialLR.isFinite) {
                    problems.append("group '\(record.name)': invalid initial learning rate \(record.initialLR)")
                }
            }
        }
        return problems
    }

    /// Writes the state to a safetensors file (atomically).
    public func save(to url: URL) throws {
        let (tensors, metadata) = try stateDict()
        try Safetensors.save(tensors, metadata: metadata, to: url)
    }

    /// Restores a state that `save(to:)` wrote.
    public func load(contentsOf url: URL) throws {
        let (tensors, metadata) = try Safetensors.load(url)
        try load(stateDict: tensors, metadata: metadata)
    }
}

extension Tensor {
    /// A copy on `device` in `dtype` that owns its memory, even when nothing needs converting: a
    /// tensor read from a file may borrow read-only mapped pages, and the optimizer writes in place.
    fileprivate func copied(to device: Device, dtype: DType) throws -> Tensor {
        try produce { ct_to(handle, dtype.rawValue, device.type, device.index, true, $0) }
    }
}
