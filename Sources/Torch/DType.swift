// Element types, with c10::ScalarType's codes as raw values.
import CTorch

public enum DType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0
    case int8 = 1
    case int16 = 2
    case int32 = 3
    case int64 = 4
    case float16 = 5
    case float32 = 6
    case float64 = 7
    case bool = 11
    case bfloat16 = 15

    public static let f16 = DType.float16, bf16 = DType.bfloat16, f32 = DType.float32, f64 = DType.float64
    public static let i64 = DType.int64, i32 = DType.int32, u8 = DType.uint8

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .int16, .float16, .bfloat16: return 2
        case .int32, .float32: return 4
        case .int64, .float64: return 8
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float16, .bfloat16, .float32, .float64: return true
        default: return false
        }
    }

    /// The name PyTorch prints (`torch.float32` → "float32").
    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .int16: return "int16"
        case .int32: return "int32"
        case .int64: return "int64"
        case .float16: return "float16"
        case .float32: return "float32"
        case .float64: return "float64"
        case .bool: return "bool"
        case .bfloat16: return "bfloat16"
        }
    }

    /// Parses a user-facing name: fp32/float32/f32, fp16/half, bf16/bfloat16, ...
    public init?(name: String) {
        switch name.lowercased() {
        case "fp32", "float32", "f32", "float": self = .float32
        case "fp16", "float16", "f16", "half": self = .float16
        case "bf16", "bfloat16": self = .bfloat16
        case "fp64", "float64", "f64", "double": self = .float64
        case "int64", "i64", "long": self = .int64
        case "int32", "i32", "int": self = .int32
        case "uint8", "u8": self = .uint8
        case "int8", "i8": self = .int8
        case "int16", "i16": self = .int16
        case "bool": self = .bool
        default: return nil
        }
    }
}

/// Swift scalar types that map one-to-one onto a tensor dtype.
public protocol TensorElement {
    static var dtype: DType { get }
}
extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Double: TensorElement { public static var dtype: DType { .float64 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension Int: TensorElement { public static var dtype: DType { .int64 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension Int16: TensorElement { public static var dtype: DType { .int16 } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }
#if arch(x86_64) || arch(arm64)
extension Float16: TensorElement { public static var dtype: DType { .float16 } }
#endif
