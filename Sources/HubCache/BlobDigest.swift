// A cache blob checked against its name, the ETag the Hub gave it: an LFS file's ETag is the SHA-256 of its
// bytes (64 hex digits), a regular file's is its git blob id, SHA-1 over "blob <size>\0" and the bytes (40).
// Read in chunks, so a 4 GB checkpoint is hashed in constant memory.
import Crypto
import Foundation

enum BlobDigest {
    enum Kind { case sha256, gitBlob }

    /// What the ETag names, or nil for an ETag that is neither (then only the size can be checked).
    static func kind(of etag: String) -> Kind? {
        guard etag.allSatisfy({ $0.isHexDigit }) else { return nil }
        return etag.count == 64 ? .sha256 : etag.count == 40 ? .gitBlob : nil
    }

    /// The file's digest in the ETag's form.
    static func digest(of file: URL, as kind: Kind) throws -> String {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        func stream(_ update: (Data) -> Void) throws {
            while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty { update(chunk) }
        }
        switch kind {
        case .sha256:
            var hasher = SHA256()
            try stream { hasher.update(data: $0) }
            return hasher.finalize().map { String(format: "%02x", $0) }.joined()
        case .gitBlob:
            let size = try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int ?? 0
            var hasher = Insecure.SHA1()
            hasher.update(data: Data("blob \(size)\0".utf8))
            try stream { hasher.update(data: $0) }
            return hasher.finalize().map { String(format: "%02x", $0) }.joined()
        }
    }

    /// nil when `file` matches `etag`, else what it hashed to.
    static func mismatch(_ file: URL, etag: String) throws -> String? {
        guard let kind = kind(of: etag) else { return nil }
        let actual = try digest(of: file, as: kind)
        return actual == etag.lowercased() ? nil : actual
    }
}
