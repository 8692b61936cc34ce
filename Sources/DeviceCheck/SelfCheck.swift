// `inkwell selfcheck`, a one-minute install check: a self-contained training run that exercises the
// tensor library end to end. A small convolutional denoiser built from Torch's layers learns to predict
// the noise added to synthetic line-art images (rings and strokes, black on white), with the
// noise-prediction MSE, AdamW, a cosine schedule with warmup and gradient clipping; a test checks that
// its validation loss falls.
import Torch

public enum SelfCheck {
    public struct Progress: Sendable {
        public let step: Int
        public let trainLoss: Double
        public let validationLoss: Double?
        public let learningRate: Double
    }

    /// A denoiser: (noisy image, noise level) → predicted noise.
    final class Denoiser {
        let conv1, conv2, conv3: Conv2d
        let norm1, norm2: GroupNorm

        init(_ vs: VarStore, width: Int) throws {
            let r = vs.root
            conv1 = try Conv2d(r / "conv1", inChannels: 2, outChannels: width, kernelSize: 3, padding: 1)
            norm1 = try GroupNorm(r / "norm1", groups: 8, channels: width)
            conv2 = try Conv2d(r / "conv2", inChannels: width, outChannels: width, kernelSize: 3, padding: 1)
            norm2 = try GroupNorm(r / "norm2", groups: 8, channels: width)
            conv3 = try Conv2d(r / "conv3", inChannels: width, outChannels: 1, kernelSize: 3, padding: 1)
        }

        func callAsFunction(_ x: Tensor, level: Tensor) throws -> Tensor {
            let levelMap = try level.view([-1, 1, 1, 1]).expand(x.shape)
            var h = try Tensor.cat([x, levelMap], dim: 1)
            h = try norm1(conv1(h)).silu()
            h = try norm2(conv2(h)).silu()
            return try conv3(h)
        }
    }

    /// Black rings and straight strokes on white, in [-1, 1], shape [batch, 1, size, size].
    static func lineArt(batch: Int, size: Int, generator: Generator, device: Device) throws -> Tensor {
        let coords = try Tensor.arange(0, Double(size), dtype: .float32, device: device)
        let xs = try coords.view([1, 1, size]), ys = try coords.view([1, size, 1])
        func uniform(_ lo: Double, _ hi: Double) throws -> Tensor {
            try Tensor.rand([batch, 1, 1], device: device, generator: generator) * (hi - lo) + lo
        }
        let s = Double(size)
        let cx = try uniform(0.3 * s, 0.7 * s), cy = try uniform(0.3 * s, 0.7 * s), radius = try uniform(0.15 * s, 0.35 * s)
        let distance = try ((xs - cx).square() + (ys - cy).square()).sqrt()
        let ring = try (distance - radius).abs().lt(1.2)
        let angle = try uniform(0, Double.pi), offset = try uniform(0.2 * s, 0.8 * s)
        let stroke = try (xs * angle.cos() + ys * angle.sin() - offset).abs().lt(0.9)
        let ink = try ring.logicalOr(stroke)
        return try Tensor.where(ink, Tensor.full([1], -1, device: device), Tensor.full([1], 1, device: device))
            .unsqueeze(1)
    }

    /// Noisy inputs, noise levels and noise targets for a batch of clean images.
    static func noised(_ clean: Tensor, generator: Generator) throws -> (Tensor, Tensor, Tensor) {
        let batch = clean.size(0)
        let level = try Tensor.rand([batch], device: clean.device, generator: generator) * 0.8 + 0.1
        let noise = try Tensor.randn(clean.shape, device: clean.device, generator: generator)
        let a = try level.view([-1, 1, 1, 1])
        let noisy = try clean * (1 - a).sqrt() + noise * a.sqrt()
        return (noisy, level, noise)
    }

    /// Trains for `steps` steps and returns the progress reported every `every` steps.
    @discardableResult
    public static func run(steps: Int = 300, batch: Int = 16, size: Int = 32, width: Int = 32, seed: UInt64 = 0,
                           device: Device = .best, every: Int = 25, report: (Progress) -> Void = { _ in }) throws -> [Progress] {
        let generator = try Generator(seed: seed, device: device == .cpu ? .cpu : device)
        let vs = VarStore(device: device, generator: try Generator(seed: seed))
        let model = try Denoiser(vs, width: width)
        try vs.setTrainable { _ in true }
        let optimizer = try AdamW(parameters: vs.trainable, lr: 2e-3, weightDecay: 1e-4)
        let schedule = try LRSchedule(.cosine, warmupSteps: steps / 10, trainingSteps: steps)

        // A fixed validation batch with fixed noise: the same numbers at every evaluation.
        let validationGenerator = try Generator(seed: seed &+ 1, device: device == .cpu ? .cpu : device)
        let validation = try noised(try lineArt(batch: 32, size: size, generator: validationGenerator, device: device),
                                    generator: validationGenerator)
        func validationLoss() throws -> Double {
            try noGrad { try F.mseLoss(model(validation.0, level: validation.1), validation.2).item() }
        }

        var history: [Progress] = []
        var smoothed: Double?
        let first = Progress(step: 0, trainLoss: .nan, validationLoss: try validationLoss(), learningRate: 0)
        history.append(first)
        report(first)
        for step in 1...steps {
            try optimizer.setLearningRates(schedule: schedule, step: step - 1)
            let (noisy, level, noise) = try noised(try lineArt(batch: batch, size: size, generator: generator, device: device),
                                                   generator: generator)
            let loss = try F.mseLoss(model(noisy, level: level), noise)
            try loss.backward()
            try clipGradNorm(optimizer.parameters, maxNorm: 1.0)
            try optimizer.step()
            try optimizer.zeroGrad()
            let value = try loss.item()
            smoothed = smoothed.map { 0.9 * $0 + 0.1 * value } ?? value
            if step % every == 0 || step == steps {
                let p = Progress(step: step, trainLoss: smoothed ?? value, validationLoss: try validationLoss(),
                                 learningRate: optimizer.learningRates.first ?? 0)
                history.append(p)
                report(p)
            }
        }
        return history
    }
}
