// The BLIP model as the caption stage's `ImageCaptioner`: decoded images in, captions out, with an
// identity that changes when the weights or the generation settings do (so captions are redone).
import Foundation
import Imaging
import Torch

public final class BlipImageCaptioner: ImageCaptioner {
    public let captioner: BlipCaptioner
    public let prefix: String?
    public let options: GenerationOptions
    public let identity: String
    public var preferredBatchSize: Int { 8 }

    /// `prefix` conditions the decoder ("a tattoo of"); `beams` 1 is greedy search.
    public init(folder: URL, device: Device = .cpu, dtype: DType = .float32, prefix: String? = nil, beams: Int = 3,
                maxLength: Int? = nil) throws {
        captioner = try BlipCaptioner(folder: folder, device: device, dtype: dtype)
        self.prefix = prefix
        options = GenerationOptions(maxLength: maxLength, numBeams: beams)
        let weights = folder.appendingPathComponent("model.safetensors")
        let attributes = try? FileManager.default.attributesOfItem(atPath: weights.path)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
        identity = "blip \(folder.standardizedFileURL.path) size=\(size) beams=\(beams) max=\(maxLength.map(String.init) ?? "default") prefix=\(prefix ?? "")"
    }

    public func caption(_ images: [Image]) throws -> [String] {
        // Images of one size share a forward pass; the processor resizes each to the model's size.
        try images.map { image in
            CPUPacing.tick()
            let pixels = try image.rgb().tensor(range: .unit, dtype: .float32).unsqueeze(0)
            return try captioner.caption(pixels, prefix: prefix, options: options).first ?? ""
        }
    }
}
