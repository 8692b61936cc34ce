// `data/processed/<dataset>/captions.json`: the caption stage's memory.
//
// It keeps the captioner's raw output per image (keyed by the image's SHA-256 and the captioner's
// identity, so BLIP never runs twice on the same pixels with the same settings) and, per variant, what
// each caption file was made from and the SHA-256 of what was written. A caption file whose content no
// longer has that hash was edited by someone: it is theirs and is kept unless --overwrite-captions.
import AtomicFile
import Foundation

public struct GeneratedCaption: Codable, Equatable, Sendable {
    public var imageSHA256: String
    public var captioner: String
    public var text: String
}

public struct CaptionFileRecord: Codable, Equatable, Sendable {
    /// The processed image the caption describes.
    public var imageSHA256: String
    /// Where the text came from: "model <identity>", "hand-written <sha256>" or "edited <sha256>".
    public var basis: String
    /// The variant's own settings (blip_plus: the hints and the token limit); empty for blip.
    public var settings: String
    /// SHA-256 of the file as written.
    public var fileSHA256: String
}

public struct CaptionManifest: Codable, Equatable, Sendable {
    public static let fileName = "captions.json"
    public static let currentVersion = 1

    public var version = CaptionManifest.currentVersion
    /// The captioner's outputs, by image stem.
    public var generated: [String: GeneratedCaption] = [:]
    /// Per variant folder name ("captions_blip"), per image stem.
    public var files: [String: [String: CaptionFileRecord]] = [:]

    public init() {}

    public static func load(datasetDirectory: URL) throws -> CaptionManifest? {
        let url = datasetDirectory.appendingPathComponent(fileName)
        guard let manifest = try ManifestJSON.decode(CaptionManifest.self, from: url) else { return nil }
        guard manifest.version == currentVersion else {
            throw DatasetError("\(url.path): caption manifest version \(manifest.version) is not \(currentVersion); rerun with --force")
        }
        return manifest
    }

    public func save(datasetDirectory: URL) throws {
        try writeAtomically(try ManifestJSON.encode(self), to: datasetDirectory.appendingPathComponent(Self.fileName))
    }
}
