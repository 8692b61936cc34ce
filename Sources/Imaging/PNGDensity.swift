// The physical pixel density of a PNG: its pHYs chunk (PNG 1.2, §4.2.4.2), pixels per metre on each axis
// with unit 1 (metre). Print dialogs and Pillow (`info["dpi"]`, ppm × 0.0254) read the print size from it.
public struct PNGDensity: Equatable, Sendable {
    public var pixelsPerMetreX: UInt32
    public var pixelsPerMetreY: UInt32

    /// The same density on both axes, from dots per inch: ppm = round(dpi / 0.0254).
    public init(dpi: Double) throws {
        let ppm = (dpi / 0.0254).rounded()
        guard dpi.isFinite, dpi > 0, ppm >= 1, ppm <= Double(UInt32.max) else {
            throw ImageError.invalid("a density of \(dpi) dpi cannot be written as pixels per metre")
        }
        pixelsPerMetreX = UInt32(ppm)
        pixelsPerMetreY = UInt32(ppm)
    }

    /// The chunk's 9 data bytes: X and Y pixels per unit (big-endian), then unit 1 = metre.
    var chunkData: [UInt8] {
        PNGEncoder.bigEndian(pixelsPerMetreX) + PNGEncoder.bigEndian(pixelsPerMetreY) + [1]
    }
}
