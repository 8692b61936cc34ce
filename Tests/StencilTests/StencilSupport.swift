// Shared by the stencil suites: the scanned-like fixture cases, rendering an SVG with rsvg-convert (librsvg,
// a real renderer), and reading a PNG back through Pillow.
import Foundation
import Imaging
import Stencil
import TestSupport

struct ScanCase {
    let scan: Image
    let truth: Bitmap
}

enum StencilSupport {
    /// The cases that reference/fixtures/stencil_inputs.py wrote (a missing fixture throws, never skips).
    static func scanCases() throws -> [ScanCase] {
        try (0..<3).map { k in
            let scan = try ImageDecoder.read(try Fixtures.url("stencil_inputs", "scan_\(k).png")).image
            let truth = try Bitmap(grey: try ImageDecoder.read(try Fixtures.url("stencil_inputs", "truth_\(k).png")).image)
            return ScanCase(scan: scan, truth: truth)
        }
    }

    struct RenderFailed: Error, CustomStringConvertible {
        let description: String
    }

    /// The SVG rasterised by rsvg-convert at `width` × `height` pixels on a transparent background; ink
    /// is where coverage (alpha) is at least half.
    static func render(svg: String, width: Int, height: Int, in folder: URL) throws -> Bitmap {
        let input = folder.appendingPathComponent("stencil.svg"), output = folder.appendingPathComponent("rendered.png")
        try svg.write(to: input, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["rsvg-convert", "-w", "\(width)", "-h", "\(height)", "-f", "png", "-o", output.path, input.path]
        let err = Pipe()
        process.standardError = err
        try process.run()
        let message = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw RenderFailed(description: "rsvg-convert (Debian: librsvg2-bin; scripts/bootstrap.sh --test installs it) "
                + "exited \(process.terminationStatus): \(String(decoding: message, as: UTF8.self))")
        }
        let rendered = try ImageDecoder.read(output).image.rgba()
        let alpha = try rendered.hwcTensor().narrow(dim: 2, start: 3, length: 1).contiguous().bytes() as [UInt8]
        return try Bitmap(width: rendered.width, height: rendered.height, ink: alpha.map { $0 >= 128 ? 1 : 0 })
    }
}
