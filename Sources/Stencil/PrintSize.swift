// The stencil's physical size: a density in dots per inch and, optionally, a printed width and/or height.
// With one side given the other follows the image's aspect ratio; with both, the image fits inside them
// (aspect kept); with neither, the pixels stay as they are and only the density is recorded.
public struct PrintSize: Equatable, Sendable {
    public enum Length: Equatable, Sendable {
        case centimetres(Double)
        case inches(Double)

        public var inches: Double {
            switch self {
            case .centimetres(let cm): return cm / 2.54
            case .inches(let inches): return inches
            }
        }
    }

    public var dpi: Double = 300
    public var width: Length?
    public var height: Length?

    /// 300 dpi at the image's own size: the defaults, valid as they stand.
    public init() {}

    public init(dpi: Double = 300, width: Length? = nil, height: Length? = nil) throws {
        guard dpi.isFinite, dpi >= 10, dpi <= 10_000 else { throw StencilError("--dpi must be between 10 and 10000, got \(dpi)") }
        for (flag, length) in [("width", width), ("height", height)] {
            guard let length else { continue }
            guard length.inches.isFinite, length.inches > 0, length.inches <= 1000 else {
                throw StencilError("--\(flag)-cm / --\(flag)-in must be a positive length (at most 1000 inches)")
            }
        }
        self.dpi = dpi
        self.width = width
        self.height = height
    }

    /// The pixel size to print an image of `pixelWidth` × `pixelHeight` at this size.
    public func pixels(forWidth pixelWidth: Int, height pixelHeight: Int) -> (width: Int, height: Int) {
        let aspect = Double(pixelWidth) / Double(pixelHeight)
        var scale: Double?
        if let width { scale = width.inches * dpi / Double(pixelWidth) }
        if let height {
            let byHeight = height.inches * dpi / Double(pixelHeight)
            scale = scale.map { min($0, byHeight) } ?? byHeight
        }
        guard let scale else { return (pixelWidth, pixelHeight) }
        let w = max(1, Int((Double(pixelWidth) * scale).rounded())), h = max(1, Int((Double(w) / aspect).rounded()))
        return (w, h)
    }
}
