// `--offload` (diffusers' enable_model_cpu_offload) on the virtual GPU, which keeps CUDA's rule that a tensor on it
// never mixes with a CPU one: a model or adapter left on the wrong side when its turn comes would throw. Each model
// must be on the device exactly while it runs, with its LoRA adapters, and the images must be the CPU's.
import Foundation
import LoRA
import Testing
import TestSupport
import Torch
@testable import StableDiffusion

@Suite struct ModelOffloadTests {
    func pipeline(_ device: Device, offload: Bool) throws -> StableDiffusionPipeline {
        try StableDiffusionPipeline.load(.diffusersFolder(Fixtures.url("pipeline", "model")), device: device,
                                         dtype: .float32, offload: offload)
    }

    /// The same adapters on both pipelines (UNet attention and text encoder), B non-zero so that they change images.
    func addLoRA(_ pipe: StableDiffusionPipeline) throws -> LoRANetwork {
        let network = LoRANetwork(device: pipe.unet.store.device, generator: try Generator(seed: 11))
        let adapters = try network.addAdapters(to: pipe.unet.store, component: .unet, config: LoRAConfig(rank: 2))
            + network.addAdapters(to: pipe.textEncoder.store, component: .textEncoder,
                                  config: LoRAConfig(rank: 2, targets: .textEncoderAttention))
        let g = try Generator(seed: 12)
        for adapter in adapters { try adapter.up.copy_(Tensor.randn(adapter.up.shape, generator: g) * 0.5) }
        return network
    }

    func options() -> GenerationOptions {
        var options = GenerationOptions(prompt: "a bold ring tattoo")
        options.negativePrompt = "color"
        options.steps = 3
        options.width = 48
        options.height = 32
        options.batch = 2
        options.seed = 4
        return options
    }

    /// Offload's images equal those without offload bit for bit (moving copies values exactly, and each model
    /// runs on the same device either way), and agree with the CPU's within float rounding: the virtual GPU runs
    /// the CPU's kernels, but libtorch picks its attention path by device (measured 9e-7 here; bound 1e-5).
    @Test func offloadOnTheVirtualGPUGivesTheSameImages() throws {
        let cpu = try pipeline(.cpu, offload: false)
        let base = try cpu(options())
        _ = try addLoRA(cpu)
        let onCPU = try cpu(options())
        #expect(try maxAbsDiff(onCPU, base) > 0.01, "the LoRA must change the images, or its adapters prove nothing")
        let resident = try pipeline(.vgpu, offload: false)
        _ = try addLoRA(resident)
        let expected = try resident(options())

        let pipe = try pipeline(.vgpu, offload: true)
        let network = try addLoRA(pipe)
        let stores = [pipe.textEncoder.store, pipe.unet.store, pipe.vae.store]
        #expect(pipe.offload && stores.allSatisfy { $0.device == .cpu }, "loaded onto the CPU")
        var steps = 0, total = 0
        let images = try pipe(options()) { step, count in
            (steps, total) = (step, count)
            // Denoising: the UNet and its adapters on the device, the text encoder and its adapters back on the
            // CPU (the previous model leaves as the next starts), the VAE still waiting there.
            #expect(pipe.unet.store.device == .vgpu && pipe.textEncoder.store.device == .cpu && pipe.vae.store.device == .cpu)
            #expect(network.adapters.allSatisfy { $0.down.device == ($0.component == .unet ? .vgpu : .cpu) })
            return true
        }
        #expect(steps == total && total >= 3)
        #expect(stores.allSatisfy { $0.device == .cpu } && network.adapters.allSatisfy { $0.up.device == .cpu },
                "every model back on the CPU after the call")
        #expect(images.device == .cpu)
        try expectEqual(images, expected, "offloaded vs resident on the virtual GPU")
        try expectEqual(pipe(options()), expected, "a second offloaded call")
        try expectClose(images, onCPU, atol: 1e-5, "offloaded on the virtual GPU vs the CPU")
    }

    /// Without offload on the device every model stays there: offload is what moved them above.
    @Test func withoutOffloadTheModelsStayOnTheDevice() throws {
        let pipe = try pipeline(.vgpu, offload: false)
        var options = options()
        options.steps = 1
        _ = try pipe(options)
        #expect(!pipe.offload)
        #expect([pipe.textEncoder.store, pipe.unet.store, pipe.vae.store].allSatisfy { $0.device == .vgpu })
    }
}
