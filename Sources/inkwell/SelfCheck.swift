// `inkwell selfcheck`: trains a small denoiser with the foundation's machinery (a quick install check).
import ArgumentParser
import DeviceCheck
import Foundation
import Torch

struct SelfCheckCommand: ParsableCommand, ComputingCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfcheck",
        abstract: "Train a small denoiser on synthetic line art with Inkwell's training machinery; prints the loss falling.")

    @Option(help: "Training steps.") var steps = 300
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Device: cpu, cuda or cuda:N (default: the best available).") var device: String?

    @OptionGroup var cpu: CPUOptions

    func run() throws {
        let target = try chooseDevice(device, setting: "--device", dtype: nil, dtypeSetting: "")
        print("Inkwell self-check on \(target): a convolutional denoiser learns to predict noise on synthetic")
        print("line art (rings and strokes), with AdamW, a cosine schedule with warmup and gradient clipping.")
        func row(_ cells: [String]) -> String {
            zip(cells, [6, 12, 12, 10]).map { String(repeating: " ", count: max(0, $1 - $0.count)) + $0 }.joined(separator: "  ")
        }
        print(row(["step", "train loss", "val loss", "lr"]))
        let start = Date()
        let history = try SelfCheck.run(steps: steps, seed: seed, device: target) { p in
            let train = p.trainLoss.isNaN ? "-" : String(format: "%.4f", p.trainLoss)
            let val = p.validationLoss.map { String(format: "%.4f", $0) } ?? "-"
            let lr = p.step == 0 ? "-" : String(format: "%.2e", p.learningRate)
            print(row([String(p.step), train, val, lr]))
        }
        let seconds = Date().timeIntervalSince(start)
        guard let first = history.first?.validationLoss, let last = history.last?.validationLoss else { return }
        print(String(format: "validation loss %.4f → %.4f (%.0f%% lower) in %.1f s, %.1f steps/s",
                     first, last, 100 * (1 - last / first), seconds, Double(steps) / seconds))
        if !(last < first) { throw ExitCode.failure }
    }
}
