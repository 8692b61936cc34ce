// A bilevel raster, one byte per pixel (1 = ink, 0 = paper), rows packed top to bottom. The stencil's
// clean-up steps and the tracer walk it pixel by pixel: connected components, thinning and boundary
// following are sequential by nature, so they run over this buffer in Swift rather than as tensor ops.
import Imaging

public struct Bitmap: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// width × height values, 1 for ink and 0 for paper.
    public internal(set) var ink: [UInt8]

    public init(width: Int, height: Int, ink: [UInt8]) throws {
        guard width > 0, height > 0, !width.multipliedReportingOverflow(by: height).overflow, ink.count == width * height else {
            throw StencilError.invalid("a \(width)×\(height) bitmap cannot hold \(ink.count) pixels")
        }
        self.width = width
        self.height = height
        self.ink = ink.map { $0 == 0 ? 0 : 1 }
    }

    /// An all-paper bitmap.
    public init(width: Int, height: Int) throws {
        try self.init(width: width, height: height, ink: [UInt8](repeating: 0, count: width * height))
    }

    /// Ink wherever a grey image's sample is below 128.
    public init(grey image: Image) throws {
        let grey = try image.gray()
        try self.init(width: grey.width, height: grey.height, ink: grey.pixels.map { $0 < 128 ? 1 : 0 })
    }

    /// Whether (x, y) is ink; everything outside the bitmap is paper.
    @inline(__always)
    public func isInk(_ x: Int, _ y: Int) -> Bool {
        x >= 0 && y >= 0 && x < width && y < height && ink[y * width + x] != 0
    }

    public var inkCount: Int { ink.reduce(0) { $0 + Int($1) } }

    /// Black ink (0) on white paper (255), one grey channel.
    public func image() throws -> Image {
        try Image(width: width, height: height, channels: 1, pixels: ink.map { $0 != 0 ? 0 : 255 })
    }

    /// Intersection over union of the ink of two bitmaps of the same size (1 when neither has ink).
    public func inkIoU(_ other: Bitmap) throws -> Double {
        guard other.width == width, other.height == height else {
            throw StencilError.invalid("cannot compare a \(width)×\(height) bitmap with a \(other.width)×\(other.height) one")
        }
        var both = 0, either = 0
        for i in 0..<ink.count {
            both += Int(ink[i] & other.ink[i])
            either += Int(ink[i] | other.ink[i])
        }
        return either == 0 ? 1 : Double(both) / Double(either)
    }
}
