// Matches diffusers models/autoencoders/autoencoder_kl.py `tiled_decode`, `_tiled_encode`, `blend_v`,
// `blend_h` (`enable_tiling()`): overlapping tiles, each blended into its upper and left neighbours, then cropped.
import Torch

extension AutoencoderKL {
    /// `tiled_decode`: latent tiles of `tileLatentMinSize` every `tileLatentMinSize · (1 − overlap)`, each decoded
    /// on its own, blended over `tileSampleMinSize · overlap` pixels, cropped to the rest.
    public func tiledDecode(_ latents: Tensor) throws -> Tensor {
        let blend = Int(Double(tileSampleMinSize) * tileOverlapFactor)
        return try Self.tiled(latents, tile: tileLatentMinSize,
                              stride: Int(Double(tileLatentMinSize) * (1 - tileOverlapFactor)),
                              blendExtent: blend, rowLimit: tileSampleMinSize - blend) { try decodeTile($0) }
    }

    /// `_tiled_encode`: the posterior's parameters from image tiles of `tileSampleMinSize`, blended over
    /// `tileLatentMinSize · overlap` latent pixels.
    public func tiledEncodeMoments(_ images: Tensor) throws -> Tensor {
        let blend = Int(Double(tileLatentMinSize) * tileOverlapFactor)
        return try Self.tiled(images, tile: tileSampleMinSize,
                              stride: Int(Double(tileSampleMinSize) * (1 - tileOverlapFactor)),
                              blendExtent: blend, rowLimit: tileLatentMinSize - blend) { try encodeMoments($0) }
    }

    /// Runs `body` on `x[:, :, i:i+tile, j:j+tile]` for i, j in steps of `stride` (edge tiles are smaller),
    /// blends each result into the blended results above and to its left, and joins the crops
    /// `[:rowLimit, :rowLimit]`. Keeps one row of results, not all of them: blending needs only the row above.
    static func tiled(_ x: Tensor, tile: Int, stride: Int, blendExtent: Int, rowLimit: Int,
                      _ body: (Tensor) throws -> Tensor) throws -> Tensor {
        guard tile > 0, stride > 0, rowLimit > 0 else {
            throw TorchError.invalidArgument("VAE tiling needs positive sizes: tile \(tile), stride \(stride), crop \(rowLimit)")
        }
        guard x.rank == 4 else { throw TorchError.invalidArgument("VAE tiling takes [B, C, H, W], got shape \(x.shape)") }
        let height = x.size(2), width = x.size(3)
        var above: [Tensor] = []
        var rows: [Tensor] = []
        for i in Swift.stride(from: 0, to: height, by: stride) {
            var row: [Tensor] = []
            var parts: [Tensor] = []
            for (j, left) in Swift.stride(from: 0, to: width, by: stride).enumerated() {
                let input = try x.narrow(dim: 2, start: i, length: Swift.min(tile, height - i))
                    .narrow(dim: 3, start: left, length: Swift.min(tile, width - left))
                var result = try body(input)
                // diffusers blends in place, so a tile's neighbours see it already blended: keep the blended one.
                if !above.isEmpty { result = try blendEdge(above[j], into: result, extent: blendExtent, dim: 2) }
                if let previous = row.last { result = try blendEdge(previous, into: result, extent: blendExtent, dim: 3) }
                row.append(result)
                parts.append(try result.narrow(dim: 2, start: 0, length: Swift.min(rowLimit, result.size(2)))
                    .narrow(dim: 3, start: 0, length: Swift.min(rowLimit, result.size(3))))
            }
            rows.append(try Tensor.cat(parts, dim: 3))
            above = row
        }
        return try Tensor.cat(rows, dim: 2)
    }

    /// `blend_v` (dim 2) / `blend_h` (dim 3): the first n = min(extent, both sizes) rows or columns of `b` become
    /// `a`'s last n · (1 − k/n) + `b`'s · k/n, k = 0…n−1.
    static func blendEdge(_ a: Tensor, into b: Tensor, extent: Int, dim: Int) throws -> Tensor {
        let n = Swift.min(a.size(dim), b.size(dim), extent)
        guard n > 0 else { return b }
        // Weights computed in double and rounded once, as PyTorch rounds a Python float scalar to the tensor's dtype.
        var shape = [1, 1, 1, 1]
        shape[dim] = n
        let fadeIn = try Tensor((0..<n).map { Float(Double($0) / Double(n)) }, shape: shape).to(b.device, dtype: b.dtype)
        let fadeOut = try Tensor((0..<n).map { Float(1 - Double($0) / Double(n)) }, shape: shape).to(b.device, dtype: b.dtype)
        let edge = try a.narrow(dim: dim, start: a.size(dim) - n, length: n) * fadeOut
            + b.narrow(dim: dim, start: 0, length: n) * fadeIn
        let size = b.size(dim)
        return n == size ? edge : try Tensor.cat([edge, b.narrow(dim: dim, start: n, length: size - n)], dim: dim)
    }
}
