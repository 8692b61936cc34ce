// The SHA-256 content hashes (lowercase hex) the dataset manifests record, so a rerun redoes only what
// changed.
import Crypto
import Foundation

enum ContentHash {
    static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// The SHA-256 of a file's content, or nil when it cannot be read (missing, a folder, no permission).
    static func sha256(of url: URL) -> String? {
        guard let data = try? Data(contentsOf: url, options: .mappedIfSafe) else { return nil }
        return sha256(data)
    }
}
