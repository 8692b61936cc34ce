// Elementwise math with PyTorch names; operators throw, so one `try` covers an expression.
import CTorch

extension Tensor {
    @inline(__always) func unary(_ op: ct_unary_op) throws -> Tensor {
        try produce { ct_unary(op, handle, $0) }
    }
    @inline(__always) func binary(_ op: ct_binary_op, _ other: Tensor) throws -> Tensor {
        try produce { ct_binary(op, handle, other.handle, $0) }
    }
    @inline(__always) func binary(_ op: ct_binary_op, _ scalar: Double, scalarFirst: Bool = false) throws -> Tensor {
        try produce { ct_binary_scalar(op, handle, scalar, scalarFirst, $0) }
    }

    public func neg() throws -> Tensor { try unary(CT_NEG) }
    public func exp() throws -> Tensor { try unary(CT_EXP) }
    public func log() throws -> Tensor { try unary(CT_LOG) }
    public func log1p() throws -> Tensor { try unary(CT_LOG1P) }
    public func expm1() throws -> Tensor { try unary(CT_EXPM1) }
    public func sqrt() throws -> Tensor { try unary(CT_SQRT) }
    public func rsqrt() throws -> Tensor { try unary(CT_RSQRT) }
    public func sin() throws -> Tensor { try unary(CT_SIN) }
    public func cos() throws -> Tensor { try unary(CT_COS) }
    public func abs() throws -> Tensor { try unary(CT_ABS) }
    public func tanh() throws -> Tensor { try unary(CT_TANH) }
    public func sigmoid() throws -> Tensor { try unary(CT_SIGMOID) }
    public func erf() throws -> Tensor { try unary(CT_ERF) }
    public func floor() throws -> Tensor { try unary(CT_FLOOR) }
    public func ceil() throws -> Tensor { try unary(CT_CEIL) }
    public func round() throws -> Tensor { try unary(CT_ROUND) }
    public func sign() throws -> Tensor { try unary(CT_SIGN) }
    public func reciprocal() throws -> Tensor { try unary(CT_RECIPROCAL) }
    public func square() throws -> Tensor { try unary(CT_SQUARE) }
    public func isnan() throws -> Tensor { try unary(CT_ISNAN) }
    public func isfinite() throws -> Tensor { try unary(CT_ISFINITE) }
    public func logicalNot() throws -> Tensor { try unary(CT_LOGICAL_NOT) }

    public func pow(_ exponent: Double) throws -> Tensor { try binary(CT_POW, exponent) }
    public func pow(_ exponent: Tensor) throws -> Tensor { try binary(CT_POW, exponent) }
    public func maximum(_ other: Tensor) throws -> Tensor { try binary(CT_MAXIMUM, other) }
    public func minimum(_ other: Tensor) throws -> Tensor { try binary(CT_MINIMUM, other) }
    public func remainder(_ other: Double) throws -> Tensor { try binary(CT_REMAINDER, other) }
    public func floorDivide(_ other: Double) throws -> Tensor { try binary(CT_FLOOR_DIVIDE, other) }
    public func atan2(_ other: Tensor) throws -> Tensor { try binary(CT_ATAN2, other) }
    public func logicalAnd(_ other: Tensor) throws -> Tensor { try binary(CT_LOGICAL_AND, other) }
    public func logicalOr(_ other: Tensor) throws -> Tensor { try binary(CT_LOGICAL_OR, other) }

    // Comparisons return bool tensors (PyTorch's eq/ne/lt/le/gt/ge).
    public func eq(_ other: Tensor) throws -> Tensor { try binary(CT_EQ, other) }
    public func ne(_ other: Tensor) throws -> Tensor { try binary(CT_NE, other) }
    public func lt(_ other: Tensor) throws -> Tensor { try binary(CT_LT, other) }
    public func le(_ other: Tensor) throws -> Tensor { try binary(CT_LE, other) }
    public func gt(_ other: Tensor) throws -> Tensor { try binary(CT_GT, other) }
    public func ge(_ other: Tensor) throws -> Tensor { try binary(CT_GE, other) }
    public func eq(_ s: Double) throws -> Tensor { try binary(CT_EQ, s) }
    public func ne(_ s: Double) throws -> Tensor { try binary(CT_NE, s) }
    public func lt(_ s: Double) throws -> Tensor { try binary(CT_LT, s) }
    public func le(_ s: Double) throws -> Tensor { try binary(CT_LE, s) }
    public func gt(_ s: Double) throws -> Tensor { try binary(CT_GT, s) }
    public func ge(_ s: Double) throws -> Tensor { try binary(CT_GE, s) }

    /// `torch.where(condition, self, other)`.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try produce { ct_where(condition.handle, a.handle, b.handle, $0) }
    }
    public func clamp(min: Double? = nil, max: Double? = nil) throws -> Tensor {
        try produce { ct_clamp(handle, min != nil, min ?? 0, max != nil, max ?? 0, $0) }
    }
    public func maskedFill(_ mask: Tensor, _ value: Double) throws -> Tensor {
        try produce { ct_masked_fill(handle, mask.handle, value, $0) }
    }
    /// self + weight · (end − self)
    public func lerp(_ end: Tensor, weight: Double) throws -> Tensor {
        try produce { ct_lerp(handle, end.handle, weight, $0) }
    }

    // MARK: Operators

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CT_ADD, b) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CT_SUB, b) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CT_MUL, b) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CT_DIV, b) }
    public static func + (a: Tensor, s: Double) throws -> Tensor { try a.binary(CT_ADD, s) }
    public static func - (a: Tensor, s: Double) throws -> Tensor { try a.binary(CT_SUB, s) }
    public static func * (a: Tensor, s: Double) throws -> Tensor { try a.binary(CT_MUL, s) }
    public static func / (a: Tensor, s: Double) throws -> Tensor { try a.binary(CT_DIV, s) }
    public static func + (s: Double, a: Tensor) throws -> Tensor { try a.binary(CT_ADD, s, scalarFirst: true) }
    public static func - (s: Double, a: Tensor) throws -> Tensor { try a.binary(CT_SUB, s, scalarFirst: true) }
    public static func * (s: Double, a: Tensor) throws -> Tensor { try a.binary(CT_MUL, s, scalarFirst: true) }
    public static func / (s: Double, a: Tensor) throws -> Tensor { try a.binary(CT_DIV, s, scalarFirst: true) }
    public static prefix func - (a: Tensor) throws -> Tensor { try a.neg() }
}
