// Generation on the device against the CPU: every sampler with classifier-free guidance and a negative
// prompt at batch 2, clip skip, img2img (VAE encode, noise added mid-schedule), and LoRAs applied as adapters
// and fused into the weights.
import Foundation
import LoRA
import StableDiffusion
import Torch
import Training

extension DeviceLane {
    static func options(_ sampler: Sampler, seed: UInt64 = 3) -> GenerationOptions {
        var options = GenerationOptions(prompt: "a bold ring tattoo")
        options.negativePrompt = "two star"
        options.steps = 4
        options.width = 32
        options.height = 32
        options.batch = 2
        options.seed = seed
        options.use(sampler)
        return options
    }

    func generation() throws -> (Bool, String) {
        let cpu = try pipeline(on: .cpu), onDevice = try pipeline(on: device)
        var worst = 0.0
        var cases = Sampler.allCases.map { Self.options($0) }
        var skip = Self.options(.euler, seed: 11)
        skip.clipSkip = 1
        skip.guidanceScale = 1  // the unguided path: no negative batch
        cases.append(skip)
        // img2img from a line drawing: one generator, and one per image with Heun's two-entry steps.
        let drawing = try SyntheticLineArt.make(count: 1, size: 32, seed: 4)[0].image
        for (sampler, strength, perImage) in [(Sampler.eulerA, 0.6, false), (.heun, 0.5, true)] {
            var img2img = Self.options(sampler, seed: 7)
            img2img.initImage = drawing
            img2img.strength = strength
            img2img.perImageSeeds = perImage
            cases.append(img2img)
        }
        for options in cases {
            worst = max(worst, try maxDifference(onDevice(options), cpu(options)) * 255)
        }
        let (passed, detail) = Self.within(worst, tolerance.levels, unit: " levels")
        return (passed, "\(cases.count) cases (\(Sampler.allCases.count) samplers, CFG, batch 2, clip skip, img2img): \(detail)")
    }

    /// A kohya LoRA file with non-zero up weights on the UNet's attention and the text encoder.
    var loraFile: URL {
        get throws {
            let file = work.appendingPathComponent("lora.safetensors")
            if FileManager.default.fileExists(atPath: file.path) { return file }
            let pipe = try pipeline(on: .cpu)
            let network = LoRANetwork(generator: try Generator(seed: 5))
            let adapters = try network.addAdapters(to: pipe.unet.store, component: .unet, config: LoRAConfig(rank: 4))
                + network.addAdapters(to: pipe.textEncoder.store, component: .textEncoder,
                                      config: LoRAConfig(rank: 4, targets: LoRATargets(["q_proj", "k_proj", "v_proj", "out_proj"])))
            // B starts at zero (the adapter is a no-op); give it weights so that the LoRA changes images.
            let g = try Generator(seed: 6)
            for adapter in adapters { try adapter.up.copy_(Tensor.randn(adapter.up.shape, generator: g) * 0.5) }
            try network.saveKohya(to: file)
            return file
        }
    }

    func loraAppliedAndFused() throws -> (Bool, String) {
        let cpu = try pipeline(on: .cpu), onDevice = try pipeline(on: device)
        let reference = [LoRAReference(url: try loraFile, multiplier: 0.8)]
        let options = Self.options(.dpmpp2m)
        let base = try cpu(options)
        _ = try cpu.applyLoRAs(reference)
        let expected = try cpu(options)
        // The LoRA must change the image, or this check would prove nothing.
        let effect = try maxDifference(expected, base) * 255
        let stack = try onDevice.applyLoRAs(reference)
        let applied = try maxDifference(onDevice(options), expected) * 255
        try stack.fuse()
        let fused = try maxDifference(onDevice(options), expected) * 255
        try stack.unfuse()
        let unfused = try maxDifference(onDevice(options), expected) * 255
        let worst = max(applied, fused, unfused)
        let (passed, detail) = Self.within(worst, tolerance.levels, unit: " levels")
        return (passed && effect > 4 * tolerance.levels,
                String(format: "applied, fused, unfused: %@; the LoRA moves the image %.0f levels", detail, effect))
    }
}
