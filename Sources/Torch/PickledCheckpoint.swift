// Pickled PyTorch files (`.ckpt`, `.pt`, `.pth`, `.bin`, or a zip/pickle under another name) are refused
// wherever a weights file is read (a model, a LoRA): unpickling runs arbitrary code.
import AtomicFile
import Foundation

public struct PickleRefused: Error, CustomStringConvertible {
    public let path: String
    public var description: String {
        let target = (path as NSString).deletingPathExtension + ".safetensors"
        return """
            \(path) is a pickled PyTorch checkpoint; Inkwell does not unpickle files (unpickling can run \
            arbitrary code). Convert it once, safely (no code in it runs):
              inkwell convert '\(path)' '\(target)'
            """
    }
}

public enum PickledCheckpoint {
    /// Throws `PickleRefused` for a pickled file (by extension or by its first bytes). A path that is not a
    /// regular file is refused first: reading the first bytes of a named pipe would block.
    public static func refuse(_ url: URL) throws {
        let ext = url.pathExtension.lowercased()
        if ["ckpt", "pt", "pth", "bin"].contains(ext) { throw PickleRefused(path: url.path) }
        try RegularFile.require(url.path)
        // Zip-based torch.save files start with "PK", raw pickles with protocol byte 0x80. A safetensors file
        // starts with its header's 8-byte little-endian length (whose first byte may well be 0x80), then "{".
        if let handle = FileHandle(forReadingAtPath: url.path) {
            defer { try? handle.close() }
            let head = [UInt8](handle.readData(ofLength: 9))
            let safetensors = head.count == 9 && head[8] == UInt8(ascii: "{")
            if !safetensors && (head.first == 0x80 || head.starts(with: [0x50, 0x4B])) { throw PickleRefused(path: url.path) }
        }
    }
}
