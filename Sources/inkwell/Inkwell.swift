// The `inkwell` command line: parses arguments, calls the libraries, prints.
import ArgumentParser
import HubCache

@main
struct Inkwell: ParsableCommand {
    /// `inkwell --version`; the release's semantic version.
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "inkwell",
        abstract: "Fine-tune Stable Diffusion 1.x with LoRA and generate images with it.",
        version: "inkwell \(version)",
        subcommands: [Demo.self, TrainBase.self, PipelineCommand.self, Prepare.self, Caption.self, Train.self, Generate.self, StencilCommand.self,
                      Compare.self, Plot.self, Convert.self, Download.self,
                      DashboardCommand.self,
                      SelfCheckCommand.self, DeviceCheckCommand.self, Info.self]
    )

    /// A model named by repo id and missing from the cache is downloaded with a progress line on stderr.
    static func main() {
        ModelFetcher.observer = CommandLineDownloadObserver()
        main(nil)
    }
}
