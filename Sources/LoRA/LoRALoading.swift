// Matching a LoRA file's modules to the layers a model registered, checking every shape, and creating the
// adapters. Everything is checked before anything is attached: a file that does not fit leaves the model as it
// was and the error lists every problem with its key.
import Foundation
import Torch

/// Maps an LDM parameter key (`input_blocks.1.1.proj_in.weight`) to the diffusers one
/// (`down_blocks.0.attentions.0.proj_in.weight`), nil when it has none. StableDiffusion provides it
/// (`SingleFileCheckpoint.unetKey`); LoRA itself knows nothing of the UNet's layout.
public typealias LDMKeyTranslation = @Sendable (String) -> String?

extension LoRANetwork {
    /// Reads a LoRA file (any format `LoRAFile` reads) and attaches it to the models whose module registries
    /// are given. `ldmTranslation` resolves LDM-named kohya UNet keys. `dtype` nil keeps each adapter in its
    /// base weight's dtype. With `strict` false, modules that match nothing are listed in `skipped` instead of
    /// failing the load; unsupported module types and mis-shaped tensors always fail it.
    public static func load(
        _ url: URL, into models: [LoRAComponent: VarStore], ldmTranslation: LDMKeyTranslation? = nil,
        multiplier: Double = 1, name: String? = nil, dtype: DType? = nil, strict: Bool = true
    ) throws -> LoRANetwork {
        let file = try LoRAFile(url: url)
        return try load(file, into: models, ldmTranslation: ldmTranslation, multiplier: multiplier,
                        name: name ?? url.deletingPathExtension().lastPathComponent, dtype: dtype, strict: strict)
    }

    public static func load(
        _ file: LoRAFile, into models: [LoRAComponent: VarStore], ldmTranslation: LDMKeyTranslation? = nil,
        multiplier: Double = 1, name: String = "default", dtype: DType? = nil, strict: Bool = true
    ) throws -> LoRANetwork {
        var problems = file.problems
        struct Placement { let weights: LoRAModuleWeights; let key: String; let base: LoRABaseLayer }
        var placements: [Placement] = []
        var resolvers: [LoRAComponent: ModuleResolver] = [:]
        var taken: [String: String] = [:]
        for weights in file.modules {
            let label = weights.downKey
            guard let store = models[weights.component] else {
                problems.unmatched.append("\(label) (no \(weights.component) was given to load into)")
                continue
            }
            let resolver = resolvers[weights.component] ?? ModuleResolver(store: store,
                                                                         ldm: weights.component == .unet ? ldmTranslation : nil)
            resolvers[weights.component] = resolver
            guard let key = resolver.resolve(weights.name) else { problems.unmatched.append(label); continue }
            let id = indexKey(weights.component, key)
            if let first = taken[id] {
                problems.incomplete.append("\(label) (module \(key) is already given by \(first))")
                continue
            }
            taken[id] = label
            guard let module = store.module(at: key) else { problems.unmatched.append(label); continue }
            let base: LoRABaseLayer
            do {
                base = try LoRABaseLayer(key: key, module: module)
            } catch let LoRAError.unsupportedModule(_, reason) {
                problems.unsupported.append((label, "LoRA on \(key), \(reason)"))
                continue
            }
            if let shapeProblems = checkShapes(weights, base: base) {
                problems.misShaped += shapeProblems
                continue
            }
            placements.append(Placement(weights: weights, key: key, base: base))
        }
        problems.matchedCount = placements.count
        let fatal = !problems.unsupported.isEmpty || !problems.misShaped.isEmpty || !problems.incomplete.isEmpty
            || placements.isEmpty || (strict && !(problems.unmatched.isEmpty && problems.unrecognized.isEmpty))
        if fatal { throw problems }

        // One VarStore holds the adapters, so the adapted models must share a device (SD's always do).
        let device = placements[0].base.weight.device
        if let other = placements.first(where: { $0.base.weight.device != device }) {
            throw LoRAError.invalidConfig("\(file.path): the models to adapt are on different devices (\(device), and \(other.key) on \(other.base.weight.device))")
        }
        let network = LoRANetwork(name: name, device: device, dtype: dtype ?? placements[0].base.weight.dtype)
        network.multiplier = multiplier
        network.skipped = problems.unmatched + problems.unrecognized.map { "\($0) (unrecognized)" }
        for p in placements {
            let rank = p.weights.down.size(0)
            let shapes = p.base.adapterShapes(rank: rank)
            let adapterDType = dtype ?? p.base.weight.dtype
            let prefix = indexKey(p.weights.component, p.key)
            // Copies in the adapter's dtype and on the base's device; reshapes bridge linear ↔ 1×1 conv files.
            let down = try network.store.parameter(prefix + ".lora_A.weight", shape: shapes.down, initializer: .none,
                                                   dtype: adapterDType, trainable: false)
            let up = try network.store.parameter(prefix + ".lora_B.weight", shape: shapes.up, initializer: .none,
                                                 dtype: adapterDType, trainable: false)
            try noGrad {
                try down.copy_(p.weights.down.reshape(shapes.down))
                try up.copy_(p.weights.up.reshape(shapes.up))
            }
            _ = try network.attach(component: p.weights.component, key: p.key, base: p.base, down: down, up: up,
                                   alpha: p.weights.alpha ?? Double(rank), dropout: 0)
        }
        return network
    }

    /// The problems with `weights` on `base`, nil when it fits: down [r, in] (or [r, in, 1, 1]), up [out, r]
    /// (or [out, r, 1, 1]), with in/out those of the layer.
    static func checkShapes(_ weights: LoRAModuleWeights, base: LoRABaseLayer) -> [(key: String, expected: [Int], found: [Int])]? {
        let down = weights.down.shape, up = weights.up.shape
        let rank = down.first ?? 0
        let expected = base.adapterShapes(rank: max(rank, 1))
        func fits(_ shape: [Int], _ want: [Int]) -> Bool {
            shape == want || (shape.count == 4 && shape[2] == 1 && shape[3] == 1 && Array(shape.prefix(2)) == Array(want.prefix(2)))
                || (shape.count == 2 && shape == Array(want.prefix(2)))
        }
        var out: [(key: String, expected: [Int], found: [Int])] = []
        if rank < 1 || !fits(down, expected.down) { out.append((weights.downKey, expected.down, down)) }
        if !fits(up, expected.up) { out.append((weights.upKey, expected.up, up)) }
        return out.isEmpty ? nil : out
    }
}

/// Finds the module a file names: dotted keys directly, kohya names through a table of the model's module
/// keys in underscore form, LDM-named kohya keys through the caller's LDM→diffusers mapping.
final class ModuleResolver {
    let store: VarStore
    let ldm: LDMKeyTranslation?
    private lazy var byUnderscoreName: [String: String] = {
        var table: [String: String] = [:]
        for key in store.moduleKeys { table[KohyaFormat.underscored(key)] = key }
        return table
    }()

    init(store: VarStore, ldm: LDMKeyTranslation?) {
        self.store = store
        self.ldm = ldm
    }

    func resolve(_ name: LoRAModuleName) -> String? {
        switch name {
        case .dotted(let key):
            for candidate in [key, "text_model." + key] where store.module(at: candidate) != nil { return candidate }
            return translated(key).flatMap { store.module(at: $0) != nil ? $0 : nil }
        case .kohya(let stem):
            // `text_model_` is absent from names made on transformers 5's flattened CLIPTextModel.
            for candidate in [stem, "text_model_" + stem] {
                if let key = byUnderscoreName[candidate] { return key }
            }
            return translated(KohyaFormat.dottedGuess(stem)).flatMap { byUnderscoreName[KohyaFormat.underscored($0)] }
        }
    }

    /// The translation works on parameter keys, so the module path gets a `.weight` for the trip.
    private func translated(_ ldmModule: String) -> String? {
        guard let ldm, let key = ldm(ldmModule + ".weight"), key.hasSuffix(".weight") else { return nil }
        return String(key.dropLast(7))
    }
}
