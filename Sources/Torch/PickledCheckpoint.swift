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
        // Zip-based torch.save files start with "PK", raw pickles with protocol byte 0x80.
        if let handle = FileHandle(forReadingAtPath: url.path) {
            defer { try? handle.close() }
            let head = handle.readData(ofLength: 2)
            if head.first == 0x80 || head.elementsEqual([0x50, 0x4B]) { throw PickleRefused(path: url.path) }
        }
    }
}
