// `inkwell convert`: a pickled PyTorch checkpoint (.ckpt, .pt, .pth, .bin) to safetensors, read without
// unpickling it (TorchPickle's restricted reader), so that an old download can be used safely.
import ArgumentParser
import Foundation
import TorchPickle
import Torch

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a pickled .ckpt/.pt checkpoint to .safetensors without running any code from it.")

    @Argument(help: "The pickled checkpoint (torch.save's zip format).") var input: String
    @Argument(help: "The .safetensors file to write.") var output: String
    @Flag(help: "Replace OUTPUT if it exists.") var force = false

    func run() throws {
        let out = URL(fileURLWithPath: output)
        guard out.pathExtension == "safetensors" else { throw ValidationError("OUTPUT must end in .safetensors, got \(output)") }
        guard force || !FileManager.default.fileExists(atPath: out.path) else {
            throw ValidationError("\(out.path) exists; pass --force to replace it")
        }
        let tensors = try TorchCheckpoint.stateDict(URL(fileURLWithPath: input))
        try Safetensors.save(tensors, metadata: ["format": "pt"], to: out)
        let bytes = tensors.values.reduce(0) { $0 + $1.shape.reduce($1.dtype.size, *) }
        say("wrote \(out.path): \(tensors.count) tensors, \(String(format: "%.1f", Double(bytes) / 1e6)) MB")
    }
}
