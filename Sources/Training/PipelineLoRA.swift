// LoRA files applied to a loaded pipeline (`inkwell generate --lora FILE:SCALE`, `inkwell compare`):
// each file becomes a network of adapters on the UNet and text encoder, LDM-named kohya keys resolved
// through the single-file checkpoint mapping.
import Foundation
import LoRA
import StableDiffusion

extension StableDiffusionPipeline {
    /// Attaches every LoRA (adapters, not fused) and returns the stack; `fuse()` on it bakes them in.
    public func applyLoRAs(_ references: [LoRAReference]) throws -> LoRAStack {
        let layers = (try? unet.config.validate().layers.first) ?? 2
        return try LoRAStack(loading: references,
                             into: [.unet: unet.store, .textEncoder: textEncoder.store],
                             ldmTranslation: { SingleFileCheckpoint.unetKey($0, layersPerBlock: layers) })
    }
}
