// `inkwell train-base`: full training of a tiny SD1.x model from scratch on generated line art (the demo's
// base model; `make demo-model` runs it with the committed recipe).
import ArgumentParser
import Foundation
import Torch
import Training

struct TrainBase: ParsableCommand, ComputingCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-base",
        abstract: "Train a tiny SD1.x model (VAE, then UNet + text encoder) from scratch on generated, captioned line art.")

    @Option(help: "The diffusers folder to write.") var output = "demo-model"
    @Option(help: "Corpus images.") var corpusSize = BaseModelRecipe().corpusSize
    @Option(help: "VAE training steps (phase 1).") var vaeSteps = BaseModelRecipe().vaeSteps
    @Option(help: "UNet + text-encoder training steps (phase 2).") var diffusionSteps = BaseModelRecipe().diffusionSteps
    @Option(help: "Phase 2 batch size.") var batchSize = BaseModelRecipe().diffusionBatchSize
    @Option(help: "Phase 2 learning rate (UNet).") var learningRate = BaseModelRecipe().learningRate
    @Option(help: "Seed of the initial weights and of training's random draws.") var seed = BaseModelRecipe().seed
    @Flag(help: "Retrain even if the folder was made by this recipe.") var force = false

    @OptionGroup var cpu: CPUOptions

    func run() throws {
        var recipe = BaseModelRecipe()
        recipe.corpusSize = corpusSize
        recipe.vaeSteps = vaeSteps
        recipe.diffusionSteps = diffusionSteps
        recipe.diffusionBatchSize = batchSize
        recipe.learningRate = learningRate
        recipe.seed = seed
        try recipe.validate()
        let interruption = Interruption.install()
        var bar: ProgressLine?
        let summary: BaseModelTrainer.Summary
        do {
            summary = try BaseModelTrainer.train(recipe: recipe, into: URL(fileURLWithPath: output), device: .cpu, force: force,
                                                 shouldStop: { interruption.requested }) { event in
                switch event {
                case .message(let text): say(text)
                case .step(let phase, let step, let total, let loss, let smoothed):
                    if step == 1 { bar = ProgressLine(total: total, label: "   \(phase.rawValue)") }
                    bar?.update(step, detail: String(format: "loss %.4f (%.4f)", loss, smoothed))
                }
            }
        } catch let stopped as BaseModelTrainingStopped {
            say(stopped.description)
            throw ExitCode(130)
        }
        guard !summary.skipped else { return }
        say(String(format: "wrote %@ in %.0f s: VAE loss %.4f, diffusion loss %.4f, scaling factor %.4f", summary.folder.path,
                   summary.seconds, summary.finalVAELoss ?? .nan, summary.finalDiffusionLoss ?? .nan, summary.scalingFactor))
    }
}
