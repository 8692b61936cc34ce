// Matches diffusers models/modeling_utils.py `ModelMixin.from_pretrained` / configuration_utils.py
// `ConfigMixin`: a component folder (`config.json` + `diffusion_pytorch_model[.variant].safetensors`), its
// config decoded unchanged, and the config-value shapes diffusers accepts ("one value or one per block").
import Foundation
import Torch

/// A config value that diffusers rejects or Inkwell does not support, naming the file and the key.
public typealias DiffusersConfigError = ConfigValueError

/// A component folder is missing something or holds weights in a form Inkwell does not read.
public struct DiffusersFolderError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

/// A config value that diffusers accepts either once for every block (`"attention_head_dim": 8`) or as a
/// list with one value per down block (`"attention_head_dim": [5, 10, 20, 20]`). Kept as written, so
/// encoding gives back the same JSON.
public enum PerBlock<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    case all(Value)
    case each([Value])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(Value.self) {
            self = .all(one)
        } else if let list = try? container.decode([Value].self) {
            self = .each(list)
        } else {
            throw DecodingError.typeMismatch(Value.self, .init(
                codingPath: decoder.codingPath,
                debugDescription: "expected \(Value.self) or a list of \(Value.self) (one per block)"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .all(let v): try container.encode(v)
        case .each(let list): try container.encode(list)
        }
    }

    /// One value per block; a list must have exactly `count` entries.
    public func values(count: Int, key: String) throws -> [Value] {
        switch self {
        case .all(let v): return Array(repeating: v, count: count)
        case .each(let list):
            guard list.count == count else {
                throw DiffusersConfigError(key: key, "has \(list.count) values but the model has \(count) blocks")
            }
            return list
        }
    }
}

extension PerBlock: ExpressibleByIntegerLiteral where Value == Int {
    public init(integerLiteral value: Int) { self = .all(value) }
}
extension PerBlock: ExpressibleByBooleanLiteral where Value == Bool {
    public init(booleanLiteral value: Bool) { self = .all(value) }
}

/// `sample_size`: one side, or (height, width).
public enum SampleSize: Codable, Sendable, Equatable {
    case square(Int)
    case size(height: Int, width: Int)

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let side = try? container.decode(Int.self) {
            self = .square(side)
        } else if let hw = try? container.decode([Int].self), hw.count == 2 {
            self = .size(height: hw[0], width: hw[1])
        } else {
            throw DecodingError.typeMismatch(Int.self, .init(codingPath: decoder.codingPath,
                                                             debugDescription: "expected an Int or [height, width]"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .square(let s): try container.encode(s)
        case .size(let h, let w): try container.encode([h, w])
        }
    }

    public var height: Int {
        switch self {
        case .square(let side): side
        case .size(let height, _): height
        }
    }
    public var width: Int {
        switch self {
        case .square(let side): side
        case .size(_, let width): width
        }
    }
}

/// diffusers' `get_activation` for the names SD1.x configs use (`act_fn`, `time_embedding_act_fn`, ...).
public enum DiffusersActivation: Sendable, Equatable {
    case silu, gelu, relu

    public init(name: String, key: String) throws {
        switch name {
        case "silu", "swish": self = .silu
        case "gelu": self = .gelu
        case "relu": self = .relu
        default: throw DiffusersConfigError(key: key, "activation \"\(name)\" is not supported (silu, swish, gelu, relu)")
        }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        switch self {
        case .silu: return try x.silu()
        case .gelu: return try x.gelu()
        case .relu: return try x.relu()
        }
    }
}

/// A diffusers model component folder: `unet/`, `vae/`, ...
public struct DiffusersModelFolder: Sendable {
    public let url: URL

    public init(_ url: URL) { self.url = url }

    public var configURL: URL { url.appendingPathComponent("config.json") }

    /// Decodes `config.json`, turning decoding failures and `validate` errors into errors that name
    /// the file and the key.
    public func config<T: Decodable>(_ type: T.Type, className: String,
                                      validate: (T) throws -> Void = { _ in }) throws -> T {
        let path = configURL.path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DiffusersFolderError(path: path, message: "no config.json: expected a diffusers component folder")
        }
        // A folder of another component (vae/ given where unet/ is expected) fails here, not deep in loading.
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
           let name = object["_class_name"] as? String, name != className {
            throw DiffusersConfigError(file: path, key: "_class_name", "is \"\(name)\", expected \"\(className)\"")
        }
        do {
            let config = try JSONDecoder().decode(T.self, from: data)
            try validate(config)
            return config
        } catch var error as DiffusersConfigError {
            error.file = path
            throw error
        } catch let error as DecodingError {
            throw Self.describe(error, file: path)
        }
    }

    static func describe(_ error: DecodingError, file: String) -> DiffusersConfigError {
        func key(_ path: [CodingKey]) -> String {
            path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return DiffusersConfigError(file: file, key: key(context.codingPath), context.debugDescription)
        case .keyNotFound(let missing, let context):
            return DiffusersConfigError(file: file, key: key(context.codingPath + [missing]), "is required")
        case .dataCorrupted(let context):
            let k = key(context.codingPath)
            return DiffusersConfigError(file: file, key: k.isEmpty ? "(file)" : k,
                                        "unreadable: \(context.debugDescription)")
        @unknown default:
            return DiffusersConfigError(file: file, key: "(file)", "\(error)")
        }
    }

    /// `diffusion_pytorch_model.safetensors`, or `diffusion_pytorch_model.<variant>.safetensors` (e.g. "fp16").
    public func weightsURL(variant: String? = nil) throws -> URL {
        let stem = "diffusion_pytorch_model"
        let name = variant.map { "\(stem).\($0).safetensors" } ?? "\(stem).safetensors"
        let file = url.appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: file.path) { return file }
        let present = (try? FileManager.default.contentsOfDirectory(atPath: url.path))?.filter { $0.hasPrefix(stem) } ?? []
        var message = "no \(name)"
        if present.contains(where: { $0.hasSuffix(".index.json") || $0.contains(".index.") }) {
            message += "; sharded weights (an .index.json) are not supported"
        } else if present.contains(where: { $0.hasSuffix(".bin") }) {
            message += "; only PyTorch pickle weights (.bin) are present, and Inkwell reads safetensors only"
        }
        if !present.isEmpty { message += " (found: \(present.sorted().joined(separator: ", ")))" }
        throw DiffusersFolderError(path: url.path, message: message)
    }

    /// The weights file opened (its header only) and a store bounded by it: the model `config.json` describes
    /// is refused at its first parameter past the file, before that parameter is allocated (`WeightsBudget`).
    public func boundedStore(device: Device, dtype: DType, variant: String? = nil) throws -> (VarStore, SafetensorsFile) {
        let file = try SafetensorsFile(url: try weightsURL(variant: variant))
        let store = VarStore(device: device, dtype: dtype, initialize: false)
        store.budget = WeightsBudget(file: file, config: configURL.path)
        return (store, file)
    }

    /// Loads `file` into `store` strictly: every missing, unexpected or mis-shaped key is reported in one error
    /// naming the file, and so is every tensor holding NaN or ±Inf. `rename` maps legacy key spellings first.
    public func load(_ file: SafetensorsFile, into store: VarStore,
                     rename: ([String: Tensor]) -> [String: Tensor] = { $0 }) throws {
        let tensors = try file.tensors()
        try NonFiniteWeights.check(tensors, source: file.path)
        try store.load(rename(tensors), strict: true, source: file.path)
    }
}
