// The `inkwell` command line: parses arguments, calls the libraries, prints.
import ArgumentParser
import Torch

@main
struct Inkwell: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inkwell",
        abstract: "Fine-tune Stable Diffusion 1.x with LoRA and generate images with it.",
        subcommands: [Demo.self, PipelineCommand.self, Prepare.self, Caption.self, Train.self, Generate.self, Compare.self, Plot.self,
                      DashboardCommand.self,
                      SelfCheckCommand.self, Info.self]
    )

    static func main() {
        // Steps reuse the pages the previous step freed (see HostMemory): 5–10 % of a CPU training step.
        HostMemory.enableCaching()
        main(nil)
    }
}
