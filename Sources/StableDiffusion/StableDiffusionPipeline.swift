// Text-to-image with classifier-free guidance, step for step diffusers' pipelines/stable_diffusion/
// pipeline_stable_diffusion.py `StableDiffusionPipeline.__call__` (encode_prompt, prepare_latents, the
// denoising loop, VAE decode, postprocess), so the same weights, prompt, seed and scheduler give the
// same image.
import Foundation
import Imaging
import Torch

public struct GenerationOptions: Sendable {
    public var prompt: String
    public var negativePrompt: String = ""
    public var steps: Int = 30
    public var guidanceScale: Double = 7.5
    public var width: Int = 512
    public var height: Int = 512
    public var seed: UInt64 = 0
    /// Images per prompt, drawn together from one generator as diffusers does (see `perImageSeeds`).
    public var batch: Int = 1
    /// Image i of the batch from its own generator seeded `seed + i` (A1111's batch seeds; diffusers with a
    /// list of generators), so that it can be made again alone, as a batch of one with that seed.
    public var perImageSeeds = false
    /// nil: the model's own scheduler (PNDM for SD1.5).
    public var scheduler: SchedulerKind?
    /// Karras sigmas for the schedulers that support them (Euler, DPM++ 2M, LMS, DPM2).
    public var karrasSigmas: Bool = false
    /// DPM-Solver++'s ODE or SDE variant (nil: the model config's `algorithm_type`).
    public var dpmSolverAlgorithm: DPMSolverMultistepScheduler.AlgorithmType?
    /// DDIM's η (0: deterministic).
    public var eta: Double = 0
    /// diffusers' `clip_skip`: layers skipped from the end of the text encoder (A1111's "Clip skip" − 1).
    public var clipSkip: Int = 0
    /// img2img (diffusers' StableDiffusionImg2ImgPipeline): start from this image (resized to width × height
    /// as diffusers' image processor does) noised to `strength` instead of from pure noise. RGB.
    public var initImage: Image?
    /// How much of the schedule img2img runs, in (0, 1]: 1 ignores the image's content, small values keep it.
    /// A1111's "Denoising strength" (its default, 0.75; diffusers' is 0.8).
    public var strength: Double = 0.75
    /// Inpainting (diffusers' StableDiffusionInpaintPipeline, with an inpainting model): where the init image is
    /// repainted (white) and kept (black), binarized at half grey; resized like the image.
    public var mask: Image?

    public init(prompt: String) { self.prompt = prompt }
}

extension SchedulerConfig {
    /// The scheduler `options` ask for, built from this (the model's) config with their changes.
    public func makeScheduler(for options: GenerationOptions) throws -> any Scheduler {
        var config = self
        if options.karrasSigmas { config.useKarrasSigmas = true }
        if let algorithm = options.dpmSolverAlgorithm { config.algorithmType = algorithm.rawValue }
        let scheduler = try config.makeScheduler(options.scheduler)
        if let ddim = scheduler as? DDIMScheduler { ddim.eta = options.eta }
        return scheduler
    }
}

public final class StableDiffusionPipeline {
    public let tokenizer: CLIPTokenizer
    public let textEncoder: CLIPTextModel
    public let unet: UNet2DConditionModel
    public let vae: AutoencoderKL
    public let schedulerConfig: SchedulerConfig
    public let device: Device
    /// The dtype of the UNet and text encoder (the VAE may run in float32, see `force_upcast`).
    public let dtype: DType
    /// diffusers' `enable_model_cpu_offload`: the models wait on the CPU and each moves to `device` only while it
    /// runs (text encoder, then UNet, then VAE; the previous one goes back to the CPU as the next starts, and the
    /// last after the call). Same numbers as without it: moving copies values exactly. Nothing moves when
    /// `device` is the CPU.
    public private(set) var offload = false

    public init(tokenizer: CLIPTokenizer, textEncoder: CLIPTextModel, unet: UNet2DConditionModel, vae: AutoencoderKL,
                schedulerConfig: SchedulerConfig, device: Device, dtype: DType) {
        self.tokenizer = tokenizer
        self.textEncoder = textEncoder
        self.unet = unet
        self.vae = vae
        self.schedulerConfig = schedulerConfig
        self.device = device
        self.dtype = dtype
    }

    /// Turns model offload on: every model goes to the CPU now and visits `device` only while it runs.
    public func enableModelCPUOffload() throws {
        offload = true
        try offloadAll()
    }

    /// The offload sequence's models, in diffusers' `model_cpu_offload_seq` order.
    public enum Component: CaseIterable, Sendable { case textEncoder, unet, vae }

    func store(_ component: Component) -> VarStore {
        switch component {
        case .textEncoder: textEncoder.store
        case .unet: unet.store
        case .vae: vae.store
        }
    }

    /// With offload, puts `component` on `device` and the others on the CPU (the hook before its forward).
    func use(_ component: Component) throws {
        guard offload, device != .cpu else { return }
        for other in Component.allCases where other != component { try store(other).move(to: .cpu) }
        try store(component).move(to: device)
    }

    /// With offload, every model back on the CPU (diffusers' `maybe_free_model_hooks` after a call).
    func offloadAll() throws {
        guard offload, device != .cpu else { return }
        for component in Component.allCases { try store(component).move(to: .cpu) }
    }

    /// Latent-space downsampling of the VAE (8 for SD1.x).
    public var vaeScaleFactor: Int { 1 << (vae.config.blockOutChannels.count - 1) }

    /// The scheduler an options value asks for, built from the model's scheduler config.
    public func makeScheduler(_ options: GenerationOptions) throws -> any Scheduler {
        try schedulerConfig.makeScheduler(for: options)
    }

    /// Prompt embeddings as `encode_prompt` makes them: padded to the tokenizer's length, truncated,
    /// no attention mask; `clipSkip` applies to the prompt only, as in diffusers.
    func encode(_ text: String, count: Int, clipSkip: Int) throws -> Tensor {
        try use(.textEncoder)
        let ids = try tokenizer.inputIds([text]).to(device)
        let embeddings = clipSkip > 0 ? try textEncoder.promptEmbeddings(ids, clipSkip: clipSkip)
                                      : try textEncoder(ids).lastHiddenState
        return try embeddings.to(dtype).repeated([count, 1, 1])
    }

    /// Generates `options.batch` images: a [B, 3, H, W] float tensor in [0, 1] on the CPU. `progress`
    /// is told (step, total) after each step and may return false to cancel (throws `Cancelled`).
    public func callAsFunction(_ options: GenerationOptions, progress: ((Int, Int) -> Bool)? = nil) throws -> Tensor {
        defer { try? offloadAll() }
        let latents = try latents(options, progress: progress)
        guard try latents.isfinite().all() else { throw NonFiniteOutput(stage: "latents") }
        let images = try decode(latents)
        // NaN survives the clamp in `decode`; without this check it would be written as a black PNG.
        guard try images.isfinite().all() else { throw NonFiniteOutput(stage: "decoded images") }
        return images
    }

    /// A generation whose result holds NaN or ±Inf: an error, never a quiet black image.
    public struct NonFiniteOutput: Error, CustomStringConvertible {
        public let stage: String
        public var description: String {
            "the generated \(stage) hold NaN or infinite values, so no image was written: check the model's and "
                + "the LoRAs' weights and scales; with fp16 weights try --dtype fp32 (or bf16), which does not overflow"
        }
    }

    /// The denoised latents (diffusers' `output_type="latent"`), in the pipeline's dtype. With an init image,
    /// img2img's start (see StableDiffusionPipeline+ImageToImage.swift), then the same loop.
    public func latents(_ options: GenerationOptions, progress: ((Int, Int) -> Bool)? = nil) throws -> Tensor {
        let factor = vaeScaleFactor
        guard options.width > 0, options.height > 0, options.width % factor == 0, options.height % factor == 0 else {
            throw TorchError.invalidArgument("width and height must be positive multiples of \(factor), got \(options.width)x\(options.height)")
        }
        guard options.steps > 0, options.batch > 0 else {
            throw TorchError.invalidArgument("steps and batch must be positive, got \(options.steps) and \(options.batch)")
        }
        if options.initImage != nil { try ImageToImage.check(strength: options.strength, steps: options.steps) }
        try checkInpainting(options)
        return try noGrad {
            CPUPacing.tick()
            let guided = options.guidanceScale > 1
            var context = try encode(options.prompt, count: options.batch, clipSkip: options.clipSkip)
            if guided {
                let negative = try encode(options.negativePrompt, count: options.batch, clipSkip: 0)
                context = try Tensor.cat([negative, context])
            }

            let scheduler = try makeScheduler(options)
            try scheduler.setTimesteps(options.steps)
            let generator = try NoiseGenerator(seed: options.seed, perImage: options.perImageSeeds ? options.batch : nil)
            var timesteps = scheduler.timesteps
            var latents: Tensor
            var conditioning: Tensor?
            if let image = options.initImage {
                timesteps = ImageToImage.timesteps(scheduler, steps: options.steps, strength: options.strength)
                if let mask = options.mask {
                    (latents, conditioning) = try inpaintingStart(image, mask: mask, options: options, timestep: timesteps[0],
                                                                  scheduler: scheduler, generator: generator, guided: guided)
                } else {
                    latents = try imageLatents(image, options: options, timestep: timesteps[0], scheduler: scheduler,
                                               generator: generator)
                }
            } else {
                let shape = [options.batch, unet.config.inChannels, options.height / factor, options.width / factor]
                latents = try randnTensor(shape, generator: generator, device: device, dtype: dtype) * scheduler.initNoiseSigma
            }
            return try denoise(latents, timesteps: timesteps, scheduler: scheduler, context: context, conditioning: conditioning,
                               guidanceScale: guided ? options.guidanceScale : nil, generator: generator, progress: progress)
        }
    }

    /// The denoising loop over `timesteps` (the schedule, or img2img's tail of it): classifier-free guidance
    /// when `guidanceScale` is given (`context` then holds the negative half first); `conditioning` is appended
    /// to the scaled UNet input's channels (inpainting's mask and masked-image latents).
    func denoise(_ start: Tensor, timesteps: [Double], scheduler: any Scheduler, context: Tensor, conditioning: Tensor? = nil,
                 guidanceScale: Double?, generator: NoiseGenerator, progress: ((Int, Int) -> Bool)?) throws -> Tensor {
        var latents = start
        try use(.unet)
        for (i, t) in timesteps.enumerated() {
            CPUPacing.tick()
            var input = try scheduler.scaleModelInput(guidanceScale != nil ? Tensor.cat([latents, latents]) : latents, timestep: t)
            if let conditioning { input = try Tensor.cat([input, conditioning], dim: 1) }
            var noise = try unet(input, timestep: try Tensor(scalar: t).to(scheduler.timestepDType).to(device),
                                 encoderHiddenStates: context)
            if let guidanceScale {
                let halves = try noise.chunk(2)
                noise = try halves[0] + (halves[1] - halves[0]) * guidanceScale
            }
            latents = try scheduler.step(modelOutput: noise, timestep: t, sample: latents, generator: generator)
            if let progress, !progress(i + 1, timesteps.count) { throw Cancelled() }
        }
        return latents
    }

    /// Latents → images in [0, 1] (`vae.decode(latents / scaling_factor)`, then `(x / 2 + 0.5).clamp(0, 1)`).
    public func decode(_ latents: Tensor) throws -> Tensor {
        try noGrad { try decodeRecorded(latents) }
    }

    func decodeRecorded(_ latents: Tensor) throws -> Tensor {
        CPUPacing.tick()
        try use(.vae)
        let vaeType = vae.store.dtype
        let images = try vae.decode(latents.to(vaeType) / vae.scalingFactor)
        return try (images / 2 + 0.5).clamp(min: 0, max: 1).to(.cpu, dtype: .float32)
    }

    /// A progress callback's false: the stop request of the whole toolkit.
    public typealias Cancelled = StopRequested
}
