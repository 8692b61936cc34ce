// The `inkwell` command line: parses arguments, calls the libraries, prints.
import ArgumentParser
import HubCache
import Torch

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

    /// ArgumentParser's own main, with the CPU thread count settled (`--threads`, INKWELL_THREADS,
    /// OMP_NUM_THREADS, or the automatic choice) between parsing and running, whatever the command; a model
    /// named by repo id and missing from the cache is downloaded with a progress line on stderr.
    static func main() {
        ModelFetcher.observer = CommandLineDownloadObserver()
        do {
            var command = try parseAsRoot()
            try CPUPacing.start(flag: (command as? ComputingCommand)?.cpu.threads)
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}
