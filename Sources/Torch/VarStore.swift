// Parameters registered under the exact dotted keys of the reference state dict, so loading a
// file is a lookup (`down_blocks.0.attentions.0.proj_in.weight`), never a rename table.
import Foundation

/// How a new parameter is filled. `.none` leaves memory uninitialised for models whose weights
/// are loaded right after construction (initialising SD1.5's 860M UNet parameters costs seconds).
public enum Initializer: Sendable {
    case none
    case zeros
    case ones
    case uniform(Double, Double)
    case normal(mean: Double, std: Double)
    /// torch.nn's `kaiming_uniform_(w, a)`: U(−b, b), b = gain·√(3 / fanIn), gain = √(2 / (1 + a²)).
    case kaimingUniform(a: Double, fanIn: Int)
}

public struct StateDictError: Error, CustomStringConvertible {
    public var missing: [String] = []
    public var unexpected: [String] = []
    /// key, expected shape, found shape
    public var misShaped: [(String, [Int], [Int])] = []
    public var source: String = "state dict"

    public var isEmpty: Bool { missing.isEmpty && unexpected.isEmpty && misShaped.isEmpty }

    public var description: String {
        var lines = ["\(source) does not match the model:"]
        if !missing.isEmpty { lines.append("  missing keys (\(missing.count)):"); lines += missing.map { "    \($0)" } }
        if !unexpected.isEmpty { lines.append("  unexpected keys (\(unexpected.count)):"); lines += unexpected.map { "    \($0)" } }
        if !misShaped.isEmpty {
            lines.append("  mis-shaped keys (\(misShaped.count)):")
            lines += misShaped.map { "    \($0.0): model \($0.1), file \($0.2)" }
        }
        return lines.joined(separator: "\n")
    }
}

public final class VarStore {
    /// Where the parameters live; `move(to:)` changes it.
    public internal(set) var device: Device
    public let dtype: DType
    /// Initialisation is skipped entirely (for models loaded from files right away).
    public let initialize: Bool
    /// Draws initial values; nil uses libtorch's default generator, as torch.nn modules do.
    public let generator: Generator?
    public private(set) var keys: [String] = []
    private var tensors: [String: Tensor] = [:]
    /// Layers by the dotted key of their module (`…attn1.to_q`), so adapters can find their targets.
    public private(set) var moduleKeys: [String] = []
    private var moduleTable: [String: AnyObject] = [:]
    /// When set, what the model may register: see `WeightsBudget`.
    public var budget: WeightsBudget?
    private var registeredElements = 0

    public init(device: Device = .cpu, dtype: DType = .float32, initialize: Bool = true, generator: Generator? = nil) {
        self.device = device
        self.dtype = dtype
        self.initialize = initialize
        self.generator = generator
    }

    public var root: VarPath { VarPath(store: self, components: []) }

    /// Registers a new parameter; duplicate keys are a programming error in a model definition.
    public func parameter(_ key: String, shape: [Int], initializer: Initializer, dtype: DType? = nil,
                          trainable: Bool = false) throws -> Tensor {
        guard tensors[key] == nil else { throw TorchError.invalidArgument("parameter '\(key)' registered twice") }
        registeredElements = try WeightsBudget.admit(key: key, shape: shape, after: registeredElements,
                                                     keyCount: keys.count, budget: budget)
        let t = try Tensor.empty(shape, dtype: dtype ?? self.dtype, device: device)
        if initialize { try fill(t, initializer) }
        if trainable { try t.requiresGrad(true) }
        tensors[key] = t
        keys.append(key)
        return t
    }

    func fill(_ t: Tensor, _ initializer: Initializer) throws {
        switch initializer {
        case .none: break
        case .zeros: try t.zero_()
        case .ones: try t.fill_(1)
        case .uniform(let lo, let hi): try draw(into: t) { try $0.uniform_(lo, hi, generator: $1) }
        case .normal(let mean, let std): try draw(into: t) { try $0.normal_(mean: mean, std: std, generator: $1) }
        case .kaimingUniform(let a, let fanIn):
            let bound = (2.0 / (1 + a * a)).squareRoot() * (3.0 / Double(fanIn)).squareRoot()
            try draw(into: t) { try $0.uniform_(-bound, bound, generator: $1) }
        }
    }

    /// Random initial values are drawn on the generator's device (the CPU for a seeded store) and then
    /// copied to the parameter's: one seed gives the same weights on every device, as a model built on the
    /// CPU and moved with `.to(device)` has (peft's and diffusers' way). The store's one deliberate crossing.
    private func draw(into t: Tensor, _ fill: (Tensor, Generator?) throws -> Void) throws {
        guard let generator, generator.device != t.device else { return try fill(t, generator) }
        let staging = try Tensor.empty(t.shape, dtype: t.dtype, device: generator.device)
        try fill(staging, generator)
        try t.copy_(staging)
    }

    public subscript(key: String) -> Tensor? { tensors[key] }
    public var count: Int { keys.count }
    /// (key, tensor) in registration order.
    public var named: [(String, Tensor)] { keys.compactMap { k in tensors[k].map { (k, $0) } } }
    public var parameterCount: Int { tensors.values.reduce(0) { $0 + $1.count } }

    // MARK: Modules

    /// Records the layer built at `key` (layers call this from their initialisers). A key registered
    /// again points at the newer layer; the parameter registry already rejects a true duplicate.
    public func register(module: AnyObject, at key: String) {
        if moduleTable.updateValue(module, forKey: key) == nil { moduleKeys.append(key) }
    }

    public func module(at key: String) -> AnyObject? { moduleTable[key] }

    /// The registered layers whose keys `predicate` selects, in registration (module) order.
    public func modules(matching predicate: (String) -> Bool = { _ in true }) -> [(key: String, module: AnyObject)] {
        moduleKeys.compactMap { key in
            guard predicate(key), let module = moduleTable[key] else { return nil }
            return (key, module)
        }
    }

    // MARK: Trainability

    /// Turns gradient tracking on for the keys `predicate` selects and off for all others.
    public func setTrainable(where predicate: (String) -> Bool) throws {
        for (k, t) in named { try t.requiresGrad(predicate(k)) }
    }
    public func freezeAll() throws { try setTrainable { _ in false } }
    public var trainable: [(String, Tensor)] { named.filter { $0.1.requiresGrad } }

    // MARK: Loading and saving

    /// Copies `state` into the registered parameters (converting dtype and device). With
    /// `strict`, every missing, unexpected and mis-shaped key is reported in one error before
    /// anything is copied.
    public func load(_ state: [String: Tensor], strict: Bool = true, source: String = "state dict") throws {
        var report = StateDictError(source: source)
        for key in keys {
            guard let value = state[key] else { report.missing.append(key); continue }
            if let t = tensors[key], t.shape != value.shape { report.misShaped.append((key, t.shape, value.shape)) }
        }
        report.unexpected = state.keys.filter { tensors[$0] == nil }.sorted()
        if !report.misShaped.isEmpty || (strict && !report.isEmpty) { throw report }
        try noGrad {
            for key in keys {
                guard let value = state[key], let t = tensors[key] else { continue }
                try t.copy_(value)
            }
        }
    }

    /// Loads a safetensors file into the registered parameters.
    public func load(safetensors url: URL, strict: Bool = true) throws {
        let file = try SafetensorsFile(url: url)
        try load(file.tensors(), strict: strict, source: url.path)
    }

    /// The parameters by key (shared with the model, not copies).
    public func stateDict() -> [String: Tensor] { tensors }

    public func save(to url: URL, metadata: [String: String]? = nil) throws {
        try Safetensors.save(tensors, metadata: metadata, to: url)
    }
}

/// A position in a model's key tree: `vs.root / "down_blocks" / 0 / "resnets"`.
public struct VarPath {
    public let store: VarStore
    public let components: [String]

    public static func / (path: VarPath, name: String) -> VarPath {
        VarPath(store: path.store, components: path.components + [name])
    }
    public static func / (path: VarPath, index: Int) -> VarPath { path / String(index) }

    /// The dotted key of `name` under this path.
    public func key(_ name: String) -> String { (components + [name]).joined(separator: ".") }
    public var prefix: String { components.joined(separator: ".") }

    public func parameter(_ name: String, shape: [Int], initializer: Initializer, trainable: Bool = false) throws -> Tensor {
        try store.parameter(key(name), shape: shape, initializer: initializer, trainable: trainable)
    }
    /// A non-trainable state tensor (for example `position_ids`) registered like a parameter.
    public func buffer(_ name: String, shape: [Int], initializer: Initializer, dtype: DType) throws -> Tensor {
        try store.parameter(key(name), shape: shape, initializer: initializer, dtype: dtype)
    }
}
