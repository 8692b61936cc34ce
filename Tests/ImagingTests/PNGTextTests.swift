// PNG writing and text chunks, checked by Pillow live: what Swift writes, Pillow reads back (pixels,
// mode and `info`), and what Pillow writes (tEXt, zTXt, iTXt, compressed or not), Swift reads back.
import Foundation
import Testing
import TestSupport
import Torch
@testable import Imaging

/// What `reference/fixtures/images.py --png-info` prints.
struct PillowPNGInfo: Decodable {
    let mode: String
    let size: [Int]
    let text: [String: String]
    let chunks: [String]
    let rgba: String
}

@Suite struct PNGTextTests {
    static let parameters = """
        tattoo line art of a koi, clean lines
        Negative prompt: blurry, shading
        Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 965400086, Size: 512x512, \
        Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "koi: 0123456789ab", Version: v1.10.1
        """

    func pillowInfo(_ url: URL) throws -> PillowPNGInfo {
        let json = try runReference("fixtures/images.py", ["--png-info", url.path])
        return try JSONDecoder().decode(PillowPNGInfo.self, from: Data(json.utf8))
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func pillowReadsWhatWeWriteInEveryMode() throws {
        let dir = try temporaryDirectory()
        let source = try Image.load(try Corpus.url("png_rgba8.png"))
        let images: [(String, Image)] = [
            ("RGBA", source), ("RGB", try source.rgb()), ("L", try source.gray()),
            ("LA", try Image(hwc: try Tensor.cat([try source.gray().hwcTensor(), try source.hwcTensor().narrow(dim: 2, start: 3, length: 1)], dim: 2))),
        ]
        for (mode, image) in images {
            let url = dir.appendingPathComponent("\(mode).png")
            try image.writePNG(to: url, text: [PNGTextChunk(keyword: "parameters", text: Self.parameters)])
            let info = try pillowInfo(url)
            #expect(info.mode == mode)
            #expect(info.size == [image.width, image.height])
            #expect(info.rgba == Self.hex(try image.rgba().pixels), "\(mode): Pillow decodes other pixels")
            #expect(info.text == ["parameters": Self.parameters])
            // Text before the image data, as Pillow and A1111 write it.
            let textAt = try #require(info.chunks.firstIndex(of: "tEXt")), dataAt = try #require(info.chunks.firstIndex(of: "IDAT"))
            #expect(textAt < dataAt)
            #expect(try Image.load(url) == image)
        }
    }

    @Test func nonLatin1TextIsWrittenAsITXtAndLatin1AsTEXt() throws {
        let url = try temporaryDirectory().appendingPathComponent("text.png")
        let chunks = [
            PNGTextChunk(keyword: "parameters", text: "\u{9F8D} dragon, linework \u{2713}\nSteps: 20"),
            PNGTextChunk(keyword: "Comment", text: "caf\u{E9} \u{FF}"),
            PNGTextChunk(keyword: "empty", text: ""),
        ]
        #expect(chunks.map(\.kind) == [.iTXt, .tEXt, .tEXt])
        try Image.filled(width: 5, height: 3, channels: 3, value: 200).writePNG(to: url, text: chunks)
        let info = try pillowInfo(url)
        #expect(info.text == chunks.dictionary)
        #expect(info.chunks.filter { $0 == "iTXt" }.count == 1 && info.chunks.filter { $0 == "tEXt" }.count == 2)
        #expect(try PNGText.read(url) == chunks)
        #expect(try ImageDecoder.read(url).text == chunks)
    }

    @Test func weReadWhatPillowWrites() throws {
        let expected = try JSONDecoder().decode([String: [String: String]].self,
                                                from: Data(contentsOf: try Fixtures.url("images", "texts.json")))
        #expect(expected.count == 3)
        for (file, text) in expected {
            let chunks = try PNGText.read(try Corpus.url(file))
            #expect(chunks.dictionary == text, "\(file)")
        }
        // The Pillow-written file has each kind: tEXt, iTXt, zTXt and compressed iTXt.
        let kinds = try PNGText.read(try Corpus.url("text_pillow.png")).map(\.kind)
        #expect(kinds == [.tEXt, .iTXt, .zTXt, .iTXt])
    }

    @Test func badKeywordsAreRefused() throws {
        let image = try Image.filled(width: 1, height: 1, channels: 1)
        for keyword in ["", String(repeating: "k", count: 80), "\u{9F8D}", "a\0b"] {
            #expect(throws: ImageError.self) { try image.pngData(text: [PNGTextChunk(keyword: keyword, text: "x")]) }
        }
    }

    @Test func textIsNotAPixelConcern() throws {
        // A text chunk that does not inflate is skipped; the pixels still decode.
        var bytes = try Image.filled(width: 2, height: 2, channels: 3, value: 9).pngData()
        bytes.insert(contentsOf: PNGEncoder.chunk("zTXt", Array("k".utf8) + [0, 0, 1, 2, 3]), at: 33)
        let decoded = try ImageDecoder.decode(bytes)
        #expect(decoded.text.isEmpty)
        #expect(decoded.image.pixels == [UInt8](repeating: 9, count: 12))
    }
}
