// Axis scales for the training plots: a range widened to "nice" round numbers (steps of 1, 2 or 5
// times a power of ten), tick values on those steps, and tick labels a reader parses at a glance
// ("0.25", "1500", "2e-5", "1e-4").
import Foundation

public struct PlotAxis: Equatable, Sendable {
    /// The axis runs from `lower` to `upper` (both on a tick).
    public let lower: Double
    public let upper: Double
    /// Distance between ticks.
    public let step: Double
    /// Tick values from `lower` to `upper`.
    public let ticks: [Double]

    /// An axis covering every finite value of `values` with about `targetTicks` ticks; `integers` keeps
    /// the step a whole number (training steps). An empty or one-valued range is widened around its value.
    public init(covering values: [Double], targetTicks: Int = 6, integers: Bool = false) {
        let finite = values.filter(\.isFinite)
        var low = finite.min() ?? 0, high = finite.max() ?? 1
        if finite.isEmpty {
            low = 0
            high = 1
        } else if low == high {
            // One value: a range around it (±10 %, or ±1 for zero and for integer axes).
            let pad = integers || low == 0 ? 1 : Swift.abs(low) * 0.1
            low -= pad
            high += pad
        }
        var step = Self.niceStep((high - low) / Double(max(1, targetTicks - 1)))
        if integers { step = max(1, step.rounded()) }
        // A hair of slack: 1e-4 / 2e-5 is 5.000000000000001 in floating point, and that must not add a tick.
        var lower = (low / step + 1e-9).rounded(.down) * step
        var upper = (high / step - 1e-9).rounded(.up) * step
        if lower > low + step * 1e-6 { lower -= step }
        if upper < high - step * 1e-6 { upper += step }
        let count = Int(((upper - lower) / step).rounded()) + 1
        let decimals = Self.decimals(for: step)
        ticks = (0..<max(count, 2)).map { Self.round(lower + Double($0) * step, decimals: decimals) }
        self.lower = ticks.first ?? lower
        self.upper = ticks.last ?? upper
        self.step = step
    }

    /// 1, 2 or 5 times a power of ten, the first not below `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw.isFinite, raw > 0 else { return 1 }
        let magnitude = pow(10, (log10(raw) + 1e-9).rounded(.down))
        // A relative slack, so that 1e-4 / 5 (2.0000000000000002e-5) counts as 2e-5, not as "more than 2".
        let fraction = raw / magnitude * (1 - 1e-9)
        let nice: Double = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10
        return nice * magnitude
    }

    /// Decimal places that show a step exactly (0 for steps of 1 and more).
    static func decimals(for step: Double) -> Int {
        max(0, -Int((log10(step) + 1e-9).rounded(.down)))
    }

    static func round(_ value: Double, decimals: Int) -> Double {
        let factor = pow(10, Double(min(decimals, 15)))
        let r = (value * factor).rounded() / factor
        return r == 0 ? 0 : r  // no "-0"
    }

    /// Where a value lies along the axis: 0 at `lower`, 1 at `upper`.
    public func fraction(_ value: Double) -> Double { (value - lower) / (upper - lower) }

    /// Whether tick labels use scientific notation: values too small or too large for plain decimals.
    public var scientific: Bool {
        let largest = max(Swift.abs(lower), Swift.abs(upper))
        return largest > 0 && (largest < 1e-3 || largest >= 1e6)
    }

    /// The label of one tick.
    public func label(_ value: Double) -> String {
        scientific ? Self.scientificLabel(value, step: step) : Self.plainLabel(value, decimals: Self.decimals(for: step))
    }

    public var labels: [String] { ticks.map(label) }

    static func plainLabel(_ value: Double, decimals: Int) -> String {
        let text = String(format: "%.\(min(decimals, 12))f", value)
        return text.hasPrefix("-") && Double(text) == 0 ? String(text.dropFirst()) : text
    }

    /// "2e-5", "1.5e-4", "0": the mantissa has the digits the step needs and no trailing zeros.
    static func scientificLabel(_ value: Double, step: Double) -> String {
        guard value != 0 else { return "0" }
        let exponent = Int((log10(Swift.abs(value)) + 1e-9).rounded(.down))
        let stepExponent = Int((log10(step) + 1e-9).rounded(.down))
        let digits = max(0, exponent - stepExponent)
        var mantissa = String(format: "%.\(min(digits, 12))f", value / pow(10, Double(exponent)))
        // Rounding can carry into a new digit (9.99 → 10.0): move it into the exponent.
        var e = exponent
        if let m = Double(mantissa), Swift.abs(m) >= 10 {
            e += 1
            mantissa = String(format: "%.\(min(max(0, digits - 1), 12))f", m / 10)
        }
        if mantissa.contains(".") {
            while mantissa.hasSuffix("0") { mantissa.removeLast() }
            if mantissa.hasSuffix(".") { mantissa.removeLast() }
        }
        return "\(mantissa)e\(e)"
    }

    /// A value for a legend or tooltip: four significant digits, scientific when small or large.
    public static func compactLabel(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? "NaN" : (value > 0 ? "inf" : "-inf") }
        let a = Swift.abs(value)
        if a != 0 && (a < 1e-3 || a >= 1e6) {
            return scientificLabel(value, step: pow(10, (log10(a)).rounded(.down) - 3))
        }
        var text = String(format: "%.4g", value)
        if text.contains("e") { text = String(format: "%.4f", value) }
        return text
    }
}
