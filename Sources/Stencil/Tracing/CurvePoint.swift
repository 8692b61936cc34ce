// A point of the traced outline, in pixel units (y down), and the few vector operations the tracer needs.
public struct CurvePoint: Equatable, Sendable {
    public var x: Double
    public var y: Double

    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }

    static func + (a: CurvePoint, b: CurvePoint) -> CurvePoint { CurvePoint(x: a.x + b.x, y: a.y + b.y) }
    static func - (a: CurvePoint, b: CurvePoint) -> CurvePoint { CurvePoint(x: a.x - b.x, y: a.y - b.y) }
    static func * (a: CurvePoint, s: Double) -> CurvePoint { CurvePoint(x: a.x * s, y: a.y * s) }

    /// The z component of the cross product.
    func cross(_ b: CurvePoint) -> Double { x * b.y - y * b.x }
    var length: Double { (x * x + y * y).squareRoot() }

    /// The point a fraction t of the way from self to b.
    func lerp(_ b: CurvePoint, _ t: Double) -> CurvePoint { self + (b - self) * t }
}
