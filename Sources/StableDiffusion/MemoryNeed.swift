// A lower bound on the memory a generation or a training step needs, so that an absurd --size, --batch,
// samples.size or training.batch_size is refused before any model loads, with the estimate in the error,
// instead of ending in an allocation failure (or the OOM killer) minutes later.
import Foundation

public enum MemoryNeed {
    /// The VAE decoder's last up block runs 128 channels at full resolution; at least three fp32 tensors of
    /// that size (input, norm, conv output) are alive at once.
    static let vaeBytesPerPixel = 3 * 128 * 4
    /// The UNet's first level: 320 channels at latent resolution, about ten fp32 tensors alive at once.
    static let unetBytesPerLatentPixel = 10 * 320 * 4
    /// Training keeps the UNet's activations for backward: well over 1 GB per 512² image for SD1.x in fp32
    /// (4096 latent pixels), so 256 KiB per latent pixel is a floor.
    static let trainingBytesPerLatentPixel = 256 * 1024
    /// The side of a VAE tile (diffusers' `tile_sample_min_size` for SD1.x): what the decoder holds with tiling.
    static let vaeTileSide = 512

    /// Bytes for generating `batch` images of `width`×`height` (nil when the arithmetic overflows).
    public static func generation(width: Int, height: Int, batch: Int, guided: Bool = true, vaeTiling: Bool = false) -> Int? {
        guard width > 0, height > 0, batch > 0, let pixels = multiply(width, height),
              let vae = multiply(vaeTiling ? min(width, vaeTileSide) * min(height, vaeTileSide) : pixels, vaeBytesPerPixel),
              let unet = multiply(pixels / 64, unetBytesPerLatentPixel, guided ? 2 : 1),
              let perImage = add(vae, unet) else { return nil }
        return multiply(perImage, batch)
    }

    /// Bytes for one training step of `batch` images of `resolution`² (nil when the arithmetic overflows).
    public static func training(resolution: Int, batch: Int) -> Int? {
        guard resolution > 0, batch > 0, let pixels = multiply(resolution, resolution) else { return nil }
        return multiply(pixels / 64, trainingBytesPerLatentPixel, batch)
    }

    /// Throws when `bytes` (an estimate above; nil for an overflow) is more than `available`. `settings` names
    /// the flags or keys with their values and `remedy` says what to change.
    public static func check(_ bytes: Int?, settings: String, remedy: String,
                             available: UInt64 = ProcessInfo.processInfo.physicalMemory) throws {
        guard let bytes else {
            throw MemoryNeedError(description: "\(settings): far too large (the memory it needs overflows a 64-bit count); \(remedy)")
        }
        guard UInt64(bytes) <= available else {
            throw MemoryNeedError(description: """
                \(settings) needs at least \(format(UInt64(bytes))) of memory (an estimate of its activations alone), \
                more than this machine's \(format(available)) of RAM; \(remedy)
                """)
        }
    }

    public static func format(_ bytes: UInt64) -> String {
        let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"]
        var value = Double(bytes), unit = 0
        while value >= 1000 && unit < units.count - 1 { value /= 1000; unit += 1 }
        return unit == 0 ? "\(bytes) bytes" : "\(String(format: "%.1f", value)) \(units[unit])"
    }

    static func multiply(_ values: Int...) -> Int? {
        var out = 1
        for v in values {
            let (p, overflow) = out.multipliedReportingOverflow(by: v)
            if overflow { return nil }
            out = p
        }
        return out
    }

    static func add(_ a: Int, _ b: Int) -> Int? {
        let (s, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : s
    }
}

/// A setting whose memory need is beyond the machine: names the settings and says what to change.
public struct MemoryNeedError: Error, CustomStringConvertible {
    public let description: String
}
