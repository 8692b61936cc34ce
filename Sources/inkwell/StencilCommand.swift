// `inkwell stencil`: images in, stencils out (a 1-bit PNG at print size and a traced SVG per image).
import ArgumentParser
import Foundation
import Imaging
import Stencil
import Torch

struct StencilCommand: ParsableCommand, ComputingCommand {
    static let configuration = CommandConfiguration(
        commandName: "stencil",
        abstract: "Turn images (scans, photos, generated line art) into stencils: a 1-bit PNG at print size and an SVG.",
        discussion: """
        For each input writes <out>/<name>.png (1-bit, its size in pHYs so print dialogs print it at --dpi) and \
        <out>/<name>.svg (smooth outlines traced from it, sized in millimetres). Ctrl-C stops after the current file; \
        files are written whole or not at all.
        """)

    @Argument(help: "Input images (PNG, JPEG, WebP).") var inputs: [String]
    @Option(help: "Output folder.") var out: String
    @OptionGroup var options: StencilOptions

    @OptionGroup var cpu: CPUOptions

    func run() throws {
        let settings = try options.settings()
        guard !inputs.isEmpty else { throw ValidationError("give at least one input image") }
        let urls = inputs.map { URL(fileURLWithPath: $0) }
        for url in urls where !FileManager.default.isReadableFile(atPath: url.path) {
            throw ValidationError("\(url.path): no such readable file")
        }
        let stems = urls.map { $0.deletingPathExtension().lastPathComponent }
        if let repeated = Dictionary(grouping: stems, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw ValidationError("two inputs are named '\(repeated)': their stencils would overwrite each other in --out")
        }
        let folder = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let interruption = Interruption.install()
        let stop = { interruption.requested }
        for (url, stem) in zip(urls, stems) {
            let start = Date()
            do {
                let image = try ImageDecoder.read(url).image
                let stencil = try Stencil(image, settings: settings, shouldStop: stop)
                let files = try stencil.write(to: folder.appendingPathComponent(stem), trace: options.trace(settings), shouldStop: stop)
                say(describe(stencil, files, seconds: Date().timeIntervalSince(start)))
            } catch is StopRequested {
                say("stopped before \(url.lastPathComponent) was finished; its files were not written")
                throw ExitCode(130)
            }
        }
    }
}
