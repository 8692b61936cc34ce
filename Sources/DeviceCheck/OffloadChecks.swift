// Generation with `--offload` and `--vae-tiling` on the device: offload must give the resident pipeline's images
// (moving a model copies its values; only the device's own nondeterminism may differ), and every model must be
// back on the CPU after the call; the tiled decode must agree with the CPU's.
import Foundation
import StableDiffusion
import Torch

extension DeviceLane {
    func offloadAndTiling() throws -> (Bool, String) {
        var options = Self.options(.euler)
        // The lane's VAE tiles are 32 latents (sample_size 64, one downsampling): 80 × 96 px needs 2 × 2 tiles.
        options.width = 96
        options.height = 80
        options.batch = 1
        options.steps = 3
        func generate(_ pipe: StableDiffusionPipeline) throws -> (Tensor, Int?) {
            pipe.vae.useTiling = true
            try device.resetPeakMemory()
            let images = try pipe(options)
            return (images, try device.peakAllocatedBytes())
        }
        let (reference, _) = try generate(try pipeline(on: .cpu))
        let (resident, residentPeak) = try generate(try pipeline(on: device))
        let offloaded = try StableDiffusionPipeline.load(.diffusersFolder(try modelFolder), device: device, dtype: .float32,
                                                         offload: true)
        let (images, offloadPeak) = try generate(offloaded)
        let backOnCPU = [offloaded.textEncoder.store, offloaded.unet.store, offloaded.vae.store].allSatisfy { $0.device == .cpu }
        let offloadDifference = try maxDifference(images, resident) * 255
        let offloadBound = device == .vgpu ? 0 : tolerance.levels
        let (tiledPassed, tiledDetail) = Self.within(try maxDifference(images, reference) * 255, tolerance.levels, unit: " levels")
        var detail = String(format: "offload vs resident %.3g levels (bound %.3g)%@; tiled decode: %@", offloadDifference,
                            offloadBound, backOnCPU ? "" : ", models NOT back on the CPU", tiledDetail)
        if let residentPeak, let offloadPeak {
            detail += String(format: "; peak %.1f MB resident, %.1f MB offloaded", Double(residentPeak) / 1e6, Double(offloadPeak) / 1e6)
        }
        return (tiledPassed && offloadDifference <= offloadBound && backOnCPU, detail)
    }
}
