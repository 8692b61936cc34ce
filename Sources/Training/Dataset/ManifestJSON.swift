// The JSON of the dataset manifests (manifest.json, captions.json).
import Foundation

enum ManifestJSON {
    /// Sorted, pretty JSON: a manifest diffs cleanly and reads well.
    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(value)
        data.append(0x0A)
        return data
    }

    /// Decodes a JSON file, nil when it does not exist; a damaged file is an error that names it.
    static func decode<T: Decodable>(_ type: T.Type, from url: URL) throws -> T? {
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
