// img2img, step for step diffusers' pipelines/stable_diffusion/pipeline_stable_diffusion_img2img.py
// `StableDiffusionImg2ImgPipeline`: the init image as `VaeImageProcessor.preprocess` prepares it, `get_timesteps`
// from the strength, and `prepare_latents` (VAE encode, a sample of the posterior times the scaling factor,
// noise added at the first remaining timestep). The denoising loop is text-to-image's (`denoise`).
import Imaging
import Torch

public enum ImageToImage {
    /// A strength in (0, 1] that leaves at least one of `steps` (diffusers runs int(steps · strength) of them).
    public static func check(strength: Double, steps: Int) throws {
        guard strength > 0, strength <= 1 else {
            throw TorchError.invalidArgument("strength must be in (0, 1], got \(GenerationInfo.number(strength))")
        }
        guard Int(Double(steps) * strength) >= 1 else {
            throw TorchError.invalidArgument("strength \(GenerationInfo.number(strength)) of \(steps) steps runs no step "
                                             + "(int(steps × strength) = 0): raise the strength or the steps")
        }
    }

    /// The size img2img generates at when none is asked for: the image's own, each side rounded down to a
    /// multiple of `multiple` (the VAE's scale factor, 8 for SD1.x), as diffusers' `get_default_height_width`.
    public static func defaultSize(of image: Image, multiple: Int = 8) -> (width: Int, height: Int) {
        (image.width - image.width % multiple, image.height - image.height % multiple)
    }

    /// `VaeImageProcessor.preprocess` for one image: Pillow's LANCZOS resize to width × height (when the size
    /// differs), then [1, 3, H, W] in [−1, 1]. Transparency is composited on white first, as A1111 does
    /// (diffusers expects RGB).
    public static func preprocess(_ image: Image, width: Int, height: Int) throws -> Tensor {
        let rgb = try image.flattened().rgb().resized(width: width, height: height, filter: .lanczos)
        return try rgb.tensor(range: .symmetric).unsqueeze(0)
    }

    /// `get_timesteps`: the last int(steps · strength) steps of the schedule (`order` entries each), with the
    /// scheduler's begin index set there (`set_begin_index`) for the schedulers that track one.
    static func timesteps(_ scheduler: any Scheduler, steps: Int, strength: Double) -> [Double] {
        let initTimestep = min(Int(Double(steps) * strength), steps)
        let start = max(steps - initTimestep, 0) * scheduler.timestepsPerStep
        if let indexed = scheduler as? any IndexedScheduler { indexed.beginIndex = start }
        return Array(scheduler.timesteps.dropFirst(start))
    }
}

extension StableDiffusionPipeline {
    /// `prepare_latents`: the init image encoded, its posterior sampled (one draw repeated over the batch from a
    /// shared generator; one per image from a generator list, as diffusers encodes image i with generator i),
    /// scaled, and noised to `timestep` with noise from the same generator(s).
    func imageLatents(_ image: Image, options: GenerationOptions, timestep: Double, scheduler: any Scheduler,
                      generator: NoiseGenerator) throws -> Tensor {
        let batch = options.batch
        let pixels = try ImageToImage.preprocess(image, width: options.width, height: options.height)
        try use(.vae)
        let posterior = try vae.encode(pixels.to(device, dtype: vae.store.dtype))
        let sample: Tensor
        switch generator {
        case .shared(let g):
            sample = try posterior.sample(generator: g).repeated([batch, 1, 1, 1])
        case .perImage(let gs):
            sample = try DiagonalGaussianDistribution(posterior.parameters.repeated([batch, 1, 1, 1])).sample(generators: gs)
        }
        let initial = try (sample * vae.scalingFactor).to(dtype)
        let noise = try randnTensor(initial.shape, generator: generator, device: device, dtype: dtype)
        return try scheduler.addNoise(initial, noise: noise, timesteps: Array(repeating: timestep, count: batch))
    }
}
