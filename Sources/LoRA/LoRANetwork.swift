// A set of adapters trained or loaded together (one training run, one LoRA file): creation on the modules
// a model registered in its VarStore, the parameters and optimizer groups, and attaching/detaching.
import Torch

public final class LoRANetwork {
    /// Names the network in messages (a file's stem, or "default" for a training run).
    public let name: String
    /// The adapters' A and B under diffusers/PEFT keys (`unet.<module>.lora_A.weight`), trainable.
    public let store: VarStore
    /// In creation (module) order. The layers hold their adapters too: a network stays in the model until
    /// `removeFromModel()`, however long this object lives (Swift may release it after its last use).
    public private(set) var adapters: [LoRAAdapter] = []
    private var index: [String: LoRAAdapter] = [:]
    /// Modules a non-strict load could not place, with the reason (empty after a strict load).
    public internal(set) var skipped: [String] = []

    /// `device`/`dtype` are those of the adapter parameters (float32 for training, whatever the base's dtype);
    /// `generator` draws fresh A matrices (nil: libtorch's default generator, as peft uses torch's).
    public init(name: String = "default", device: Device = .cpu, dtype: DType = .float32, generator: Generator? = nil) {
        self.name = name
        store = VarStore(device: device, dtype: dtype, initialize: true, generator: generator)
    }

    public subscript(component: LoRAComponent, key: String) -> LoRAAdapter? { index[Self.indexKey(component, key)] }

    static func indexKey(_ component: LoRAComponent, _ key: String) -> String { component.diffusersPrefix + "." + key }

    // MARK: Settings that apply to every adapter

    /// The strength of the whole network (`--lora FILE:SCALE`).
    public var multiplier: Double = 1 {
        didSet { for adapter in adapters { adapter.multiplier = multiplier } }
    }
    /// The generator every adapter's dropout draws from (nil: libtorch's default generator).
    public var dropoutGenerator: Generator? {
        didSet { for adapter in adapters { adapter.dropoutGenerator = dropoutGenerator } }
    }
    /// Training mode turns dropout on.
    public var isTraining = false {
        didSet { for adapter in adapters { adapter.isTraining = isTraining } }
    }
    public var isEnabled = true {
        didSet { for adapter in adapters { adapter.isEnabled = isEnabled } }
    }
    public var isFused: Bool { adapters.contains { $0.isFused } }
    public var components: [LoRAComponent] { LoRAComponent.allCases.filter { c in adapters.contains { $0.component == c } } }

    // MARK: Fresh adapters for training

    /// Puts a fresh adapter on every module of `modules` (a model's VarStore) whose key matches
    /// `config.targets`, freezes every base parameter of that store (only adapters train, as peft does)
    /// and returns the new adapters.
    @discardableResult
    public func addAdapters(to modules: VarStore, component: LoRAComponent, config: LoRAConfig) throws -> [LoRAAdapter] {
        try config.validate()
        let matched = modules.modules { config.targets.matches($0) }
        guard !matched.isEmpty else {
            throw LoRAError.noTargets(component: component, patterns: config.targets.patterns, available: modules.moduleKeys)
        }
        // Check every match before creating anything, so a failure leaves the model untouched.
        let bases = try matched.map { (key: $0.key, base: try LoRABaseLayer(key: $0.key, module: $0.module)) }
        for (key, _) in bases where self[component, key] != nil { throw LoRAError.duplicateAdapter(key) }
        if let (key, base) = bases.first(where: { $0.base.weight.device != store.device }) {
            throw LoRAError.invalidConfig("network '\(name)' keeps its parameters on \(store.device), but \(key) is on \(base.weight.device)")
        }
        try modules.freezeAll()
        var created: [LoRAAdapter] = []
        for (key, base) in bases {
            let shapes = base.adapterShapes(rank: config.rank)
            let fanIn = shapes.down.dropFirst().reduce(1, *)
            let initializer: Initializer = config.initialization == .kaimingUniform
                ? .kaimingUniform(a: 5.0.squareRoot(), fanIn: fanIn)
                : .normal(mean: 0, std: 1 / Double(config.rank))
            let prefix = Self.indexKey(component, key)
            let down = try store.parameter(prefix + ".lora_A.weight", shape: shapes.down, initializer: initializer, trainable: true)
            let up = try store.parameter(prefix + ".lora_B.weight", shape: shapes.up, initializer: .zeros, trainable: true)
            created.append(try attach(component: component, key: key, base: base, down: down, up: up,
                                      alpha: config.alpha, dropout: config.dropout))
        }
        return created
    }

    /// Registers an adapter whose tensors are already in `store` and hooks it into its layer.
    func attach(component: LoRAComponent, key: String, base: LoRABaseLayer, down: Tensor, up: Tensor, alpha: Double,
                dropout: Double) throws -> LoRAAdapter {
        let adapter = LoRAAdapter(component: component, key: key, base: base, down: down, up: up, alpha: alpha, dropout: dropout)
        adapter.multiplier = multiplier
        adapter.isTraining = isTraining
        adapter.isEnabled = isEnabled
        adapters.append(adapter)
        index[Self.indexKey(component, key)] = adapter
        base.attach(adapter)
        return adapter
    }

    /// Takes every adapter off its layer; the model computes as before the network was added.
    public func removeFromModel() throws {
        guard !isFused else { throw LoRAError.fused("network '\(name)' is fused into the base weights; unfuse it first") }
        for adapter in adapters { adapter.base.detach(adapter) }
    }

    /// Hooks the adapters back into their layers after `removeFromModel`.
    public func reattach() {
        for adapter in adapters where !adapter.isFused {
            adapter.base.detach(adapter)
            adapter.base.attach(adapter)
        }
    }

    // MARK: Parameters for the optimizer

    /// Every A and B, by key (the base model's parameters are not among them).
    public var parameters: [(String, Tensor)] { store.named }

    /// The A and B of one component's adapters.
    public func parameters(of component: LoRAComponent) -> [(String, Tensor)] {
        let prefix = component.diffusersPrefix + "."
        return store.named.filter { $0.0.hasPrefix(prefix) }
    }

    /// One AdamW group per component that has adapters: the text encoder usually trains with its own,
    /// smaller learning rate (`textEncoderLR` nil: the UNet's).
    public func parameterGroups(unetLR: Double, textEncoderLR: Double? = nil, betas: (Double, Double) = (0.9, 0.999),
                                eps: Double = 1e-8, weightDecay: Double = 0.01) -> [AdamW.ParamGroup] {
        LoRAComponent.allCases.compactMap { component in
            let params = parameters(of: component)
            guard !params.isEmpty else { return nil }
            let lr = component == .unet ? unetLR : (textEncoderLR ?? unetLR)
            return AdamW.ParamGroup(name: component.diffusersPrefix, parameters: params, lr: lr, betas: betas, eps: eps,
                                    weightDecay: weightDecay)
        }
    }

    /// Copies A and B from another source into this network's tensors (for example a resumed run).
    public func loadParameters(_ state: [String: Tensor], source: String) throws {
        try store.load(state, strict: true, source: source)
    }
}
