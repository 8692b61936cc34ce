// The diffusion training loss of one micro-batch, as diffusers' examples/text_to_image/
// train_text_to_image_lora.py computes it: noise the latents at random timesteps (DDPM add_noise), predict
// the noise (or v), MSE in float32, optional min-SNR-γ weights (diffusers' compute_snr). The trainer runs
// backward of loss / accumulation.
import Foundation
import StableDiffusion
import Torch

/// Everything random about a micro-batch, drawn up front, so a step is a pure function of it.
public struct MicroBatch {
    /// Scaled latents x₀ [B, C, h, w] (already × scaling factor).
    public var latents: Tensor
    public var noise: Tensor
    /// Integer timesteps [B].
    public var timesteps: Tensor
    /// Text-encoder hidden states [B, 77, D], or nil when the text encoder trains (then `inputIds`).
    public var context: Tensor?
    public var inputIds: Tensor?

    public init(latents: Tensor, noise: Tensor, timesteps: Tensor, context: Tensor? = nil, inputIds: Tensor? = nil) {
        self.latents = latents
        self.noise = noise
        self.timesteps = timesteps
        self.context = context
        self.inputIds = inputIds
    }
}

/// The training step's forward pass and loss: the UNet's prediction for noised latents against its target.
public struct DiffusionLoss {
    public let unet: UNet2DConditionModel
    public let textEncoder: CLIPTextModel
    public let noise: DDPMScheduler
    /// The dtype the frozen weights run in (float32, or bf16/fp16 in mixed precision).
    public let computeType: DType
    public let minSNRGamma: Double

    public init(unet: UNet2DConditionModel, textEncoder: CLIPTextModel, noise: DDPMScheduler, computeType: DType,
                minSNRGamma: Double) {
        self.unet = unet
        self.textEncoder = textEncoder
        self.noise = noise
        self.computeType = computeType
        self.minSNRGamma = minSNRGamma
    }

    /// The loss of one micro-batch (autograd graph kept for backward).
    public func callAsFunction(_ batch: MicroBatch) throws -> Tensor {
        let noisy = try noise.addNoise(batch.latents, noise: batch.noise, timesteps: batch.timesteps)
        let context: Tensor
        if let c = batch.context {
            context = c
        } else if let ids = batch.inputIds {
            context = try textEncoder(ids).lastHiddenState
        } else {
            throw TorchError.invalidArgument("a micro-batch needs text embeddings or input ids")
        }
        let target: Tensor
        switch noise.predictionType {
        case .epsilon: target = batch.noise
        case .vPrediction: target = try noise.velocity(batch.latents, noise: batch.noise, timesteps: batch.timesteps)
        case .sample: target = batch.latents
        }
        let prediction = try unet(noisy.to(computeType), timestep: batch.timesteps, encoderHiddenStates: context.to(computeType))
        guard minSNRGamma > 0 else {
            return try F.mseLoss(prediction.to(.float32), target.to(.float32))
        }
        // Min-SNR-γ (Hang et al. 2023): weight min(SNR, γ) / SNR for ε, / (SNR + 1) for v.
        let snr = try noise.snr(batch.timesteps).to(.float32).to(prediction.device)
        var weights = try snr.clamp(max: minSNRGamma)
        weights = try noise.predictionType == .vPrediction ? weights / (snr + 1) : weights / snr
        let perSample = try F.mseLoss(prediction.to(.float32), target.to(.float32), reduction: .none)
            .mean(dims: Array(1..<prediction.rank))
        return try (perSample * weights).mean()
    }
}
