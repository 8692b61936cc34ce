// LoRA training on the device against the same run on the CPU: cached latents (VAE encode on the device),
// flips, noise offset, min-SNR weighting, LoRA dropout, validation loss, samples with their CLIP score,
// text-encoder adapters, and fp16 loss scaling or bf16 weights. Both runs draw their data randomness from
// the same seeded CPU generators, so their losses and final adapters agree to rounding.
import Foundation
import Imaging
import LoRA
import RunFiles
import StableDiffusion
import Torch
import Training

extension DeviceLane {
    /// Eight synthetic line-art images (32 px) with captions, the last two held out for validation.
    func examples() throws -> [TrainingExample] {
        let folder = work.appendingPathComponent("images")
        let items = try SyntheticLineArt.make(count: 8, size: 32, seed: 5)
        let urls = try SyntheticLineArt.write(items, to: folder)
        return urls.enumerated().map { i, url in
            TrainingExample(name: url.lastPathComponent, image: url, caption: items[i].caption, isValidation: i >= 6)
        }
    }

    func trainer(on device: Device, precision: MixedPrecision, textEncoder: Bool, name: String) throws -> LoRATrainer {
        var config = TrainingConfig()
        config.model.path = try modelFolder.path
        config.data.dataset = work.path
        config.data.resolution = 32
        config.data.flip = true
        config.lora.rank = 4
        config.lora.alpha = 4
        config.lora.textEncoder = textEncoder
        // Masks come from a generator on the training device: the virtual GPU's draws the CPU's numbers, so
        // its run can be compared with the CPU's; CUDA's draws other numbers, so there the check runs without.
        config.lora.dropout = self.device == .vgpu ? 0.1 : 0
        config.optimizer.learningRate = 2e-3
        config.schedule.name = .constantWithWarmup
        config.schedule.warmupSteps = 1
        config.training.maxSteps = 4
        config.training.batchSize = 2
        config.training.mixedPrecision = precision
        config.training.minSNRGamma = 5
        config.training.noiseOffset = 0.05
        config.validation.every = 2
        config.samples.every = 4
        config.samples.size = 32
        config.samples.steps = 3
        config.samples.prompts = ["a bold ring"]
        config.samples.seeds = [1]
        config.output.dir = work.appendingPathComponent("runs").path
        config.output.name = "\(name)-\(device == .cpu ? "cpu" : "device")"
        let weights = config.training.weightDType
        let pipe = try pipeline(on: device, dtype: weights, vaeDType: .float32)
        let trainer = try LoRATrainer(config: config, examples: try examples(), pipeline: pipe, modelIdentity: "device-lane",
                                      cacheDirectory: work.appendingPathComponent("cache-\(device == .cpu ? "cpu" : "device")"))
        let scorer = try clipScorer(on: device)
        trainer.clipScorer = { images, prompts in try scorer.score(images: images, prompts: prompts) }
        return trainer
    }

    func training(precision: MixedPrecision) throws -> (Bool, String) {
        var worstLoss = 0.0, worstWeight = 0.0
        var steps = 0
        for textEncoder in [false, true] {
            let name = "\(precision)\(textEncoder ? "-te" : "")"
            var runs: [(rows: [TrainingLogRow], lora: [String: Tensor])] = []
            for target in [Device.cpu, device] {
                let trainer = try trainer(on: target, precision: precision, textEncoder: textEncoder, name: name)
                steps = try trainer.run(resume: false).steps
                let lora = Dictionary(uniqueKeysWithValues: trainer.network.parameters.map { ($0.0, $0.1) })
                runs.append((try TrainingLog.read(RunFolder(trainer.config.runDirectory).log), lora))
            }
            let (cpu, onDevice) = (runs[0], runs[1])
            guard cpu.rows.count == onDevice.rows.count else {
                return (false, "log rows differ: \(cpu.rows.count) on the CPU, \(onDevice.rows.count) on the device")
            }
            for (a, b) in zip(cpu.rows, onDevice.rows) {
                // CLIP scores are on torchmetrics' ×100 scale.
                let pairs: [(Double?, Double?, Double)] = [(a.trainLoss, b.trainLoss, 1), (a.validationLoss, b.validationLoss, 1),
                                                           (a.clipScore, b.clipScore, 0.01)]
                for (x, y, scale) in pairs {
                    guard let x, let y else {
                        if (x == nil) != (y == nil) { return (false, "step \(a.step): a value is missing on one side") }
                        continue
                    }
                    guard x.isFinite, y.isFinite else { return (false, "step \(a.step): non-finite loss \(x) / \(y)") }
                    worstLoss = max(worstLoss, Swift.abs(x - y) * scale)
                }
            }
            for (key, value) in cpu.lora {
                guard let other = onDevice.lora[key] else { return (false, "adapter \(key) missing on the device") }
                guard other.device == device else { return (false, "adapter \(key) is on \(other.device), not \(device)") }
                worstWeight = max(worstWeight, try maxDifference(other, value))
            }
        }
        let half = precision != .no
        let (lossesPass, losses) = Self.within(worstLoss, half ? tolerance.halfPrecisionLoss : tolerance.fp32)
        let (weightsPass, weights) = Self.within(worstWeight, half ? tolerance.halfPrecisionWeights : tolerance.fp32)
        return (lossesPass && weightsPass, "\(steps) steps, UNet and text-encoder runs; losses, val loss, CLIP/100: \(losses); adapters: \(weights)")
    }

    func vaeEncodeAndCache() throws -> (Bool, String) {
        let images = try examples().map(\.image)
        var caches: [LatentCache] = []
        for device in [Device.cpu, device] {
            let vae = try pipeline(on: device).vae
            let folder = work.appendingPathComponent("latents-\(device == .cpu ? "cpu" : "device")")
            try? FileManager.default.removeItem(at: folder)
            let cache = try LatentCache(directory: folder, vae: vae, vaeIdentity: "device-lane")
            try cache.prepare(images, flips: true)
            caches.append(cache)
        }
        var worst = 0.0
        for image in images {
            for flipped in [false, true] {
                let a = try caches[0].moments(image, flipped: flipped, device: .cpu)
                let b = try caches[1].moments(image, flipped: flipped, device: device)
                guard b.mean.device == device else { return (false, "moments came back on \(b.mean.device)") }
                worst = max(worst, try maxDifference(a.mean, b.mean), try maxDifference(a.logvar, b.logvar))
            }
        }
        let (passed, detail) = Self.within(worst, tolerance.fp32)
        return (passed, "\(images.count) images × 2 flips, mean and log-variance: \(detail)")
    }

    /// A run stopped after two steps (as Ctrl-C stops it) and resumed ends where an uninterrupted run on the
    /// same device ends: the state saved from the device (adapters, optimizer, generators) restores exactly.
    func trainingResume() throws -> (Bool, String) {
        let full = try trainer(on: device, precision: .no, textEncoder: false, name: "resume-full")
        _ = try full.run(resume: false)
        let first = try trainer(on: device, precision: .no, textEncoder: false, name: "resume-part")
        // By step, not by poll: the trainer also polls inside caching, validation and samples.
        var steps = 0
        let stopped = try first.run(resume: false, shouldStop: { steps >= 2 }, events: { if case .step = $0 { steps += 1 } })
        guard stopped.interrupted, stopped.steps == 2 else {
            return (false, "the first run did not stop after 2 steps (\(stopped.steps) steps, interrupted: \(stopped.interrupted))")
        }
        let resumed = try trainer(on: device, precision: .no, textEncoder: false, name: "resume-part")
        let summary = try resumed.run(resume: true)
        var worst = 0.0
        let expected = Dictionary(uniqueKeysWithValues: full.network.parameters.map { ($0.0, $0.1) })
        for (key, value) in resumed.network.parameters {
            guard let other = expected[key] else { return (false, "adapter \(key) missing from the uninterrupted run") }
            worst = max(worst, try maxDifference(value, other))
        }
        let losses = try [full, resumed].map { try TrainingLog.read(RunFolder($0.config.runDirectory).log).map(\.trainLoss) }
        guard losses[0] == losses[1] || device != .vgpu else { return (false, "the logs differ: \(losses[0]) vs \(losses[1])") }
        // Bit for bit on the virtual GPU; a GPU's atomics may reorder sums between the two runs.
        let (passed, detail) = Self.within(worst, device == .vgpu ? 0 : tolerance.fp32)
        return (passed && summary.steps == 4, "stopped at step 2, resumed to \(summary.steps): adapters vs the uninterrupted run, \(detail)"
            .replacingOccurrences(of: "device - cpu", with: "resumed - uninterrupted"))
    }
}
