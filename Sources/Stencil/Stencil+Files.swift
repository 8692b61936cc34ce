// Writing a stencil's files: the 1-bit PNG and, optionally, the traced SVG, each atomically (a stop or a
// crash never leaves half a file under the final name).
import AtomicFile
import Foundation
import Imaging

public struct StencilFiles: Sendable {
    public let png: URL
    public let svg: URL?
    /// Nodes of the SVG's path (0 without an SVG).
    public let nodes: Int
}

extension Stencil {
    /// Writes `<base>.png` and, unless `trace` is nil, `<base>.svg`.
    public func write(to base: URL, trace: TraceSettings?, shouldStop: () -> Bool = { false }) throws -> StencilFiles {
        let png = base.appendingPathExtension("png")
        try writeAtomically(Data(try pngData()), to: png)
        guard let trace else { return StencilFiles(png: png, svg: nil, nodes: 0) }
        let (document, nodes) = try svg(settings: trace, shouldStop: shouldStop)
        let svgURL = base.appendingPathExtension("svg")
        try writeAtomically(Data(document.utf8), to: svgURL)
        return StencilFiles(png: png, svg: svgURL, nodes: nodes)
    }
}
