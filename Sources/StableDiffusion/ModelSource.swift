// Where a Stable Diffusion 1.x model comes from: a diffusers folder (model_index.json with unet/, vae/,
// text_encoder/, tokenizer/, scheduler/) or a single-file LDM checkpoint, whose configs are SD1.5's
// (diffusers' `from_single_file` uses the same defaults for a "v1" checkpoint).
import AtomicFile
import Foundation
import HubCache
import Torch

public enum ModelSource: Sendable, Equatable {
    case diffusersFolder(URL)
    case singleFile(URL)

    /// Classifies a user-supplied path, or a Hugging Face repo id (`org/name[@revision]`) found in the local
    /// cache or downloaded into it (of `variant`, when the repo has it); the error says what was expected.
    public init(path: String, variant: String? = nil) throws {
        let url: URL
        do { url = try ModelLocation.resolve(path, variant: variant) } catch let error as HubCacheError {
            throw DiffusersFolderError(path: error.subject, message: error.message)
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw DiffusersFolderError(path: url.path, message: "no such file or folder")
        }
        if isDirectory.boolValue {
            guard FileManager.default.fileExists(atPath: url.appendingPathComponent("model_index.json").path)
                    || FileManager.default.fileExists(atPath: url.appendingPathComponent("unet").path) else {
                throw DiffusersFolderError(path: url.path, message: "not a diffusers model folder (no model_index.json or unet/)")
            }
            self = .diffusersFolder(url)
        } else {
            // A named pipe or a device is refused by type, before anything opens it (a pipe would block).
            if let problem = RegularFile.problem(atPath: url.path) { throw DiffusersFolderError(path: url.path, message: problem) }
            self = .singleFile(url)
        }
    }

    public var url: URL {
        switch self {
        case .diffusersFolder(let u), .singleFile(let u): return u
        }
    }

    /// The name A1111 shows as "Model": the file or folder name without extension.
    public var displayName: String { url.deletingPathExtension().lastPathComponent }
}

/// SD1.5's component configs (formats.md §1.3–1.7), used for single-file checkpoints.
public enum StableDiffusion15 {
    public static var unetConfig: UNet2DConditionConfig {
        var c = UNet2DConditionConfig()
        c.crossAttentionDim = 768
        c.sampleSize = .square(64)
        return c
    }
    /// The UNet config for a single file's (converted) UNet weights: an inpainting checkpoint (sd-v1-5-inpainting)
    /// differs only in conv_in's input channels, 9, which diffusers' from_single_file also reads off that weight.
    public static func unetConfig(for unet: [String: Tensor]) -> UNet2DConditionConfig {
        var c = unetConfig
        if let convIn = unet["conv_in.weight"], convIn.rank == 4 { c.inChannels = convIn.size(1) }
        return c
    }
    public static var vaeConfig: AutoencoderKLConfig {
        var c = AutoencoderKLConfig()
        c.blockOutChannels = [128, 256, 512, 512]
        c.downBlockTypes = Array(repeating: "DownEncoderBlock2D", count: 4)
        c.upBlockTypes = Array(repeating: "UpDecoderBlock2D", count: 4)
        c.layersPerBlock = 2
        c.sampleSize = .square(512)
        return c
    }
    /// CLIP ViT-L/14's text tower as SD1.x's text_encoder/config.json describes it.
    public static var textEncoderConfig: CLIPTextConfig {
        var c = CLIPTextConfig()
        c.hiddenSize = 768
        c.intermediateSize = 3072
        c.projectionDim = 768
        c.numAttentionHeads = 12
        c.numHiddenLayers = 12
        c.eosTokenId = 2
        c.bosTokenId = 0
        return c
    }
    public static var schedulerConfig: SchedulerConfig {
        var c = SchedulerConfig()
        c.className = "PNDMScheduler"
        c.numTrainTimesteps = 1000
        c.betaStart = 0.00085
        c.betaEnd = 0.012
        c.betaSchedule = "scaled_linear"
        c.clipSample = false
        c.setAlphaToOne = false
        c.skipPrkSteps = true
        c.stepsOffset = 1
        c.trainedBetas = nil
        return c
    }
}
