// Loading a whole pipeline: diffusers' `StableDiffusionPipeline.from_pretrained` for a folder and
// `from_single_file` for an LDM checkpoint (with SD1.5's configs and a tokenizer folder beside it).
import Foundation
import Torch

extension StableDiffusionPipeline {
    /// fp16 on a GPU, fp32 on the CPU (where half precision is slow and imprecise).
    public static func defaultDType(for device: Device) -> DType { device == .cpu ? .float32 : .float16 }

    /// Loads every component. `variant` picks `*.{variant}.safetensors` weights in a folder
    /// ("fp16"); `tokenizer` overrides where a single-file checkpoint's tokenizer comes from; `vaeDType`
    /// overrides the VAE's dtype (by default `dtype`, or float32 for an fp16 pipeline whose VAE config
    /// says `force_upcast`). `offload` loads the weights on the CPU and runs each model on `device` only while
    /// it runs (`enableModelCPUOffload`); `dtype` still defaults for `device`.
    public static func load(_ source: ModelSource, device: Device = .best, dtype: DType? = nil, variant: String? = nil,
                            tokenizer tokenizerFolder: URL? = nil, vaeDType: DType? = nil,
                            offload: Bool = false) throws -> StableDiffusionPipeline {
        let pipeline = try load(source, weightsOn: offload ? .cpu : device, runOn: device, dtype: dtype ?? defaultDType(for: device),
                                variant: variant, tokenizer: tokenizerFolder, vaeDType: vaeDType)
        if offload { try pipeline.enableModelCPUOffload() }
        return pipeline
    }

    private static func load(_ source: ModelSource, weightsOn storage: Device, runOn device: Device, dtype: DType,
                             variant: String?, tokenizer tokenizerFolder: URL?, vaeDType: DType?) throws -> StableDiffusionPipeline {
        func vaeType(_ config: AutoencoderKLConfig) -> DType {
            // SD1.x's VAE overflows in fp16; diffusers keeps it in fp32 when `force_upcast` is set.
            vaeDType ?? (dtype == .float16 && config.forceUpcast ? .float32 : dtype)
        }
        switch source {
        case .diffusersFolder(let root):
            let tokenizer = try CLIPTokenizer(folder: tokenizerFolder ?? root.appendingPathComponent("tokenizer"))
            let textEncoder = try CLIPTextModel.load(directory: root.appendingPathComponent("text_encoder"), device: storage, dtype: dtype)
            let unet = try UNet2DConditionModel.load(folder: root.appendingPathComponent("unet"), variant: variant,
                                                     device: storage, dtype: dtype)
            let vaeFolder = root.appendingPathComponent("vae")
            let vaeConfig = try DiffusersModelFolder(vaeFolder).config(AutoencoderKLConfig.self, className: "AutoencoderKL") { _ in }
            let vae = try AutoencoderKL.load(folder: vaeFolder, variant: variant, device: storage,
                                             dtype: vaeType(vaeConfig))
            let scheduler = try SchedulerConfig.load(from: root.appendingPathComponent("scheduler/scheduler_config.json"))
            return StableDiffusionPipeline(tokenizer: tokenizer, textEncoder: textEncoder, unet: unet, vae: vae,
                                           schedulerConfig: scheduler, device: device, dtype: dtype)

        case .singleFile(let file):
            let folder = tokenizerFolder ?? file.deletingLastPathComponent().appendingPathComponent("tokenizer")
            guard ["tokenizer.json", "vocab.json"].contains(where: {
                FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path)
            }) else {
                throw DiffusersFolderError(path: folder.path, message: """
                    a single-file checkpoint carries no tokenizer: put SD1.5's tokenizer/ folder (tokenizer.json, \
                    or vocab.json and merges.txt) beside \(file.lastPathComponent), or pass --tokenizer PATH
                    """)
            }
            let tokenizer = try CLIPTokenizer(folder: folder)
            let vaeConfig = StableDiffusion15.vaeConfig
            let layers = try StableDiffusion15.unetConfig.validate().layers.first ?? 2
            let checkpoint = try SingleFileCheckpoint(url: file, unetLayersPerBlock: layers,
                                                      vaeBlockCount: vaeConfig.blockOutChannels.count)
            guard checkpoint.unknown.isEmpty else {
                throw DiffusersFolderError(path: file.path, message: "keys that are not SD1.x weights: "
                    + checkpoint.unknown.prefix(20).joined(separator: ", ") + (checkpoint.unknown.count > 20 ? ", …" : ""))
            }
            let textStore = VarStore(device: storage, dtype: dtype, initialize: false)
            let textEncoder = try CLIPTextModel(textStore.root, config: StableDiffusion15.textEncoderConfig)
            try textStore.load(CLIPTextModel.normalizedStateDict(checkpoint.textEncoder), source: file.path)
            let unetStore = VarStore(device: storage, dtype: dtype, initialize: false)
            let unet = try UNet2DConditionModel(unetStore.root, config: StableDiffusion15.unetConfig(for: checkpoint.unet))
            try unetStore.load(checkpoint.unet, source: file.path)
            let vaeStore = VarStore(device: storage, dtype: vaeType(vaeConfig), initialize: false)
            let vae = try AutoencoderKL(vaeStore.root, config: vaeConfig)
            try vaeStore.load(AutoencoderKL.renamingLegacyAttentionKeys(checkpoint.vae), source: file.path)
            return StableDiffusionPipeline(tokenizer: tokenizer, textEncoder: textEncoder, unet: unet, vae: vae,
                                           schedulerConfig: StableDiffusion15.schedulerConfig, device: device, dtype: dtype)
        }
    }
}
