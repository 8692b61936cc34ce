// VAE latents cached once per dataset and resolution. The cache keeps the latent distribution
// (mean and log-variance), not one sample of it, so every step still draws a fresh sample, as an
// uncached trainer would; flipped images get their own entries. Each entry is keyed by the image
// file's SHA-256, the VAE weights' identity and the flip, so a changed image or VAE re-encodes.
import Crypto
import Foundation
import Imaging
import StableDiffusion
import Torch

public final class LatentCache {
    public let directory: URL
    let vae: AutoencoderKL
    let vaeIdentity: String
    /// Loaded entries by content key and device: a caller on another device never gets another device's copy.
    private var memory: [String: (mean: Tensor, logvar: Tensor)] = [:]
    /// Content keys by (path, flip): each image file is hashed once per run, not per step.
    private var keys: [String: String] = [:]

    /// `vaeIdentity` names the VAE weights (e.g. the model path and file size) so caches of different
    /// models never mix.
    public init(directory: URL, vae: AutoencoderKL, vaeIdentity: String) throws {
        self.directory = directory
        self.vae = vae
        self.vaeIdentity = vaeIdentity
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    static func sha256(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    func key(for image: URL, flipped: Bool) throws -> String {
        let id = image.path + (flipped ? "|flip" : "")
        if let known = keys[id] { return known }
        let content = try Data(contentsOf: image)
        let key = Self.sha256(Data((Self.sha256(content) + "|" + vaeIdentity + "|" + (flipped ? "flip" : "")).utf8))
        keys[id] = key
        return key
    }

    /// Encodes whatever is missing; returns how many images were encoded. `shouldStop` is polled before each
    /// image (throws `StopRequested`): every entry is its own atomically written file, so what is done is kept.
    @discardableResult
    public func prepare(_ images: [URL], flips: Bool, shouldStop: () -> Bool = { false },
                        progress: (Int, Int) -> Void = { _, _ in }) throws -> Int {
        var encoded = 0
        let variants = flips ? [false, true] : [false]
        let total = images.count * variants.count
        var done = 0
        for url in images {
            for flipped in variants {
                let key = try key(for: url, flipped: flipped)
                let file = directory.appendingPathComponent("\(key).safetensors")
                if FileManager.default.fileExists(atPath: file.path) {
                    done += 1
                    continue
                }
                try StopRequested.check(shouldStop)
                CPUPacing.tick()
                let image = try Image.load(url).rgb()
                var pixels = try image.tensor(range: .symmetric, dtype: .float32, device: vae.store.device).unsqueeze(0)
                if flipped { pixels = try pixels.flip([3]) }
                let dist = try noGrad { try vae.encode(pixels.to(vae.store.dtype)) }
                try Safetensors.save(["mean": try dist.mean.to(.cpu, dtype: .float32), "logvar": try dist.logvar.to(.cpu, dtype: .float32)],
                                     metadata: ["source": url.lastPathComponent, "flipped": String(flipped)], to: file)
                encoded += 1
                done += 1
                progress(done, total)
            }
        }
        return encoded
    }

    /// The cached distribution of one image (mean, log-variance), [1, C, h, w] on `device`.
    public func moments(_ image: URL, flipped: Bool, device: Device) throws -> (mean: Tensor, logvar: Tensor) {
        let key = try key(for: image, flipped: flipped)
        if let hit = memory["\(key)|\(device)"] { return hit }
        let file = directory.appendingPathComponent("\(key).safetensors")
        let (tensors, _) = try Safetensors.load(file)
        guard let mean = tensors["mean"], let logvar = tensors["logvar"] else {
            throw SafetensorsError(path: file.path, reason: .missingTensor("mean/logvar"))
        }
        let entry = (try mean.to(device), try logvar.to(device))
        memory["\(key)|\(device)"] = entry
        return entry
    }
}
