// Inpainting with an SD1.x inpainting model, step for step diffusers' pipelines/stable_diffusion/
// pipeline_stable_diffusion_inpaint.py `StableDiffusionInpaintPipeline`: the mask as its mask processor prepares it
// (resize, grey, binarize), `prepare_latents` (pure noise at strength 1, else the encoded image noised),
// `prepare_mask_latents` (the mask at latent size, the masked image encoded), and the UNet's 9 input channels:
// latents, mask, masked-image latents. The denoising loop is text-to-image's (`denoise`).
import Imaging
import Torch

public enum Inpainting {
    /// The UNet input channels of an inpainting model (runwayml/stable-diffusion-inpainting, sd-v1-5-inpainting):
    /// 4 latent + 1 mask + 4 masked-image latent channels.
    public static let unetInChannels = 9

    /// The mask processor's `preprocess` (no normalization, binarized, grey): Pillow's LANCZOS resize to width ×
    /// height (when the size differs), then Pillow's grey ("L"), then 1 where ≥ 0.5 and 0 below: [1, 1, H, W].
    /// White is repainted, black kept.
    public static func preprocessMask(_ mask: Image, width: Int, height: Int) throws -> Tensor {
        let grey = try mask.resized(width: width, height: height, filter: .lanczos).gray()
        let values = try grey.tensor(range: .unit).unsqueeze(0)
        return try values.ge(0.5).to(.float32)
    }
}

extension StableDiffusionPipeline {
    /// Whether the UNet is an inpainting one (9 input channels).
    public var isInpaintingModel: Bool { unet.config.inChannels == Inpainting.unetInChannels }

    /// A mask needs an init image and an inpainting UNet; an inpainting UNet needs both (diffusers' text-to-image
    /// and img2img pipelines cannot run it either).
    func checkInpainting(_ options: GenerationOptions) throws {
        if options.mask != nil {
            guard options.initImage != nil else {
                throw TorchError.invalidArgument("a mask inpaints an init image: give the image too (--init-image)")
            }
            guard isInpaintingModel else {
                throw TorchError.invalidArgument("a mask needs an inpainting model (a UNet with \(Inpainting.unetInChannels) input channels, "
                    + "as runwayml/stable-diffusion-inpainting or sd-v1-5-inpainting); this model's UNet takes \(unet.config.inChannels)")
            }
        } else if isInpaintingModel {
            throw TorchError.invalidArgument("this is an inpainting model (its UNet takes \(Inpainting.unetInChannels) input channels): "
                + "give it an init image and a mask (--init-image, --mask)")
        }
    }

    /// The start latents and the UNet's extra input channels (mask and masked-image latents, doubled for
    /// classifier-free guidance), in diffusers' order of random draws: the image's posterior sample (below strength
    /// 1), the noise, then the masked image's posterior sample. diffusers encodes the one image with one generator
    /// (the first of a list) and repeats it over the batch.
    func inpaintingStart(_ image: Image, mask: Image, options: GenerationOptions, timestep: Double, scheduler: any Scheduler,
                         generator: NoiseGenerator, guided: Bool) throws -> (latents: Tensor, conditioning: Tensor) {
        let batch = options.batch, factor = vaeScaleFactor
        let first: Generator
        switch generator {
        case .shared(let g): first = g
        case .perImage(let gs): first = gs[0]
        }
        func encoded(_ pixels: Tensor) throws -> Tensor {
            let sample = try vae.encode(pixels.to(device, dtype: vae.store.dtype)).sample(generator: first)
            return try (sample * vae.scalingFactor).to(dtype).repeated([batch, 1, 1, 1])
        }
        let pixels = try ImageToImage.preprocess(image, width: options.width, height: options.height)
        let shape = [batch, 4, options.height / factor, options.width / factor]
        try use(.vae)
        let latents: Tensor
        if options.strength == 1 {
            latents = try randnTensor(shape, generator: generator, device: device, dtype: dtype) * scheduler.initNoiseSigma
        } else {
            let imageLatents = try encoded(pixels)
            let noise = try randnTensor(shape, generator: generator, device: device, dtype: dtype)
            latents = try scheduler.addNoise(imageLatents, noise: noise, timesteps: Array(repeating: timestep, count: batch))
        }
        let maskCondition = try Inpainting.preprocessMask(mask, width: options.width, height: options.height)
        let maskedLatents = try encoded(pixels * maskCondition.lt(0.5).to(.float32))
        let latentMask = try maskCondition.interpolate(size: (options.height / factor, options.width / factor), mode: .nearest)
            .to(device, dtype: dtype).repeated([batch, 1, 1, 1])
        var conditioning = try Tensor.cat([latentMask, maskedLatents], dim: 1)
        if guided { conditioning = try Tensor.cat([conditioning, conditioning]) }
        return (latents, conditioning)
    }
}
