// PNG text chunks: tEXt (Latin-1), zTXt (compressed Latin-1) and iTXt (UTF-8, optionally compressed).
// A1111 stores its generation parameters under the keyword "parameters": as tEXt when the text is
// Latin-1 encodable, else as an uncompressed iTXt (Pillow's `PngInfo.add_text`); readers accept both.
import Foundation

public struct PNGTextChunk: Equatable, Sendable {
    public enum Kind: String, Sendable { case tEXt, zTXt, iTXt }

    public var keyword: String
    public var text: String
    public var kind: Kind

    /// A chunk to write: `kind` is chosen from the text as Pillow chooses it (tEXt if Latin-1, else iTXt).
    public init(keyword: String, text: String) {
        self.init(keyword: keyword, text: text, kind: PNGTextChunk.isLatin1(text) ? .tEXt : .iTXt)
    }

    public init(keyword: String, text: String, kind: Kind) {
        self.keyword = keyword
        self.text = text
        self.kind = kind
    }

    /// Pillow refuses to inflate more than this per text chunk (PngImagePlugin.MAX_TEXT_CHUNK).
    static let maxInflatedText = 1 << 20

    static func isLatin1(_ s: String) -> Bool { s.unicodeScalars.allSatisfy { $0.value <= 0xFF } }
    static func latin1(_ bytes: some Sequence<UInt8>) -> String {
        String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }

    /// Parses one chunk's data; nil for a malformed or oversized chunk, which is metadata and so is
    /// skipped rather than failing the image (Pillow skips undecodable text too).
    static func parse(type: String, data: UnsafeBufferPointer<UInt8>) -> PNGTextChunk? {
        guard let nul = data.firstIndex(of: 0), nul > 0 else { return nil }
        let keyword = latin1(data[0..<nul])
        let rest = UnsafeBufferPointer(rebasing: data[(nul + 1)...])
        switch type {
        case "tEXt":
            return PNGTextChunk(keyword: keyword, text: latin1(rest), kind: .tEXt)
        case "zTXt":
            guard rest.first == 0, let inflated = Zlib.inflate(UnsafeBufferPointer(rebasing: rest.dropFirst()), limit: maxInflatedText)
            else { return nil }
            return PNGTextChunk(keyword: keyword, text: latin1(inflated), kind: .zTXt)
        case "iTXt":
            // compression flag, method, language tag \0, translated keyword \0, text
            guard rest.count >= 2, rest[0] <= 1, rest[1] == 0 else { return nil }
            let compressed = rest[0] == 1
            let fields = rest.dropFirst(2)
            guard let languageEnd = fields.firstIndex(of: 0),
                  let translatedEnd = fields[(languageEnd + 1)...].firstIndex(of: 0) else { return nil }
            let body = UnsafeBufferPointer(rebasing: rest[(translatedEnd + 1)...])
            let utf8: [UInt8]
            if compressed {
                guard let inflated = Zlib.inflate(body, limit: maxInflatedText) else { return nil }
                utf8 = inflated
            } else {
                utf8 = Array(body)
            }
            guard let text = String(validating: utf8, as: UTF8.self) else { return nil }
            return PNGTextChunk(keyword: keyword, text: text, kind: .iTXt)
        default:
            return nil
        }
    }

    /// The chunk's (type, data) as written: tEXt `key\0latin1`, or iTXt `key\0 0 0 \0 \0 utf8`
    /// (uncompressed, no language), as Pillow writes them. zTXt is written as tEXt (nothing needs
    /// compressed text, and every reader takes both).
    func encoded() throws -> (type: String, data: [UInt8]) {
        guard (1...79).contains(keyword.unicodeScalars.count), PNGTextChunk.isLatin1(keyword),
              !keyword.unicodeScalars.contains("\0") else {
            throw ImageError.invalid("PNG text keyword \"\(keyword)\" must be 1–79 Latin-1 characters without NUL")
        }
        let key = keyword.unicodeScalars.map { UInt8($0.value) }
        if kind != .iTXt && PNGTextChunk.isLatin1(text) {
            return ("tEXt", key + [0] + text.unicodeScalars.map { UInt8($0.value) })
        }
        return ("iTXt", key + [0, 0, 0, 0, 0] + Array(text.utf8))
    }
}

extension Array where Element == PNGTextChunk {
    /// keyword → text, a later chunk replacing an earlier one (Pillow's `Image.text` dictionary).
    public var dictionary: [String: String] {
        reduce(into: [:]) { $0[$1.keyword] = $1.text }
    }
}

public enum PNGText {
    /// The text chunks of a PNG file, without decoding its pixels.
    public static func read(_ url: URL) throws -> [PNGTextChunk] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ImageError(file: url.path, reason: .io("cannot read the file: \(error.localizedDescription)"))
        }
        let bytes = [UInt8](data)
        guard !bytes.isEmpty else { throw ImageError(file: url.path, reason: .empty) }
        guard ImageFormat.detect(bytes) == .png else {
            throw ImageError(file: url.path, reason: .unsupportedFormat("not a PNG: text chunks are a PNG feature"))
        }
        return try bytes.withUnsafeBufferPointer { b in
            let png = try PNGFile(b, file: url.path)
            return png.text.compactMap { PNGTextChunk.parse(type: $0.type, data: UnsafeBufferPointer(rebasing: b[$0.data])) }
        }
    }
}
