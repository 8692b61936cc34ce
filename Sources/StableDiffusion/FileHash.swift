// The hashes A1111 and CivitAI use to identify models and LoRAs (formats.md §4): SHA-256 of the whole
// file ("Model hash" = first 10 hex digits) and, for LoRAs, of the safetensors data after the header
// ("addnet" hash, first 12 hex digits), streamed so multi-GB checkpoints never sit in memory.
import Crypto
import Foundation

public enum FileHash {
    /// SHA-256 of bytes `offset...` of the file, as lowercase hex.
    public static func sha256(_ url: URL, from offset: UInt64 = 0) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: url.path])
        }
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// A1111's "Model hash": the first 10 hex digits of the file's SHA-256.
    public static func modelHash(_ url: URL) throws -> String { String(try sha256(url).prefix(10)) }

    /// A1111's LoRA short hash: the first 12 hex digits of the SHA-256 of the safetensors data section.
    public static func loraHash(_ url: URL) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: url.path])
        }
        let header = try handle.read(upToCount: 8) ?? Data()
        try handle.close()
        guard header.count == 8 else { throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: url.path]) }
        let n = header.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian }
        return String(try sha256(url, from: 8 + n).prefix(12))
    }
}
