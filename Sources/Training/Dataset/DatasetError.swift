// Errors of the dataset stages, and the small file helpers they share: every message names the file or
// the setting it is about.
import Crypto
import Foundation

public struct DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static func io(_ path: String, _ what: String, _ error: Error) -> DatasetError {
        DatasetError("\(path): cannot \(what): \(error.localizedDescription)")
    }
}

enum DatasetFiles {
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

    /// Sorted, pretty JSON: a manifest diffs cleanly and reads well.
    static func encodeJSON<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(value)
        data.append(0x0A)
        return data
    }

    /// Decodes a JSON file, nil when it does not exist; a damaged file is an error that names it.
    static func decodeJSON<T: Decodable>(_ type: T.Type, from url: URL) throws -> T? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw DatasetError.io(url.path, "read", error) }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw DatasetError("\(url.path): not a valid manifest (\(error)); delete it or run with --force")
        }
    }
}
