// Broken files (each one refused by Pillow too, which the fixture script checks) throw an ImageError
// that names the file and the reason; none crashes, and none allocates what its header claims.
import Foundation
import Testing
import TestSupport
@testable import Imaging

@Suite struct BrokenFileTests {
    static func kind(_ reason: ImageError.Reason) -> String {
        switch reason {
        case .empty: return "empty"
        case .unsupportedFormat: return "unsupported"
        case .truncated: return "truncated"
        case .corrupt: return "corrupt"
        case .tooLarge: return "tooLarge"
        case .io: return "io"
        case .invalidArgument: return "invalidArgument"
        }
    }

    @Test func everyBrokenFileThrowsNamingTheFileAndTheReason() throws {
        let broken = try Corpus.broken()
        #expect(broken.count >= 15)
        for entry in broken {
            let url = try Corpus.url(entry.file)
            do {
                let image = try Image.load(url)
                Issue.record("\(entry.file) decoded to \(image.width)×\(image.height); Pillow refuses it")
            } catch let error as ImageError {
                #expect(error.file == url.path, "\(entry.file)")
                #expect(Self.kind(error.reason) == entry.reason, "\(entry.file): \(error)")
                #expect(error.description.contains(entry.file), "\(error)")
            }
        }
    }

    @Test func theSizeLimitIsCheckedOnTheHeader() throws {
        // The bomb files claim 10^10, 3.6·10^9 and 2.7·10^8 pixels; they hold a few hundred bytes.
        for (file, width, height) in [("bomb.png", 100_000, 100_000), ("bomb.jpg", 60_000, 60_000), ("bomb.webp", 16_383, 16_383)] {
            #expect(throws: ImageError(file: try Corpus.url(file).path,
                                       reason: .tooLarge(width: width, height: height, limit: ImageDecoder.defaultMaxPixels))) {
                try Image.load(try Corpus.url(file))
            }
        }
        // The limit is a parameter: exactly at it decodes, one pixel under refuses.
        for file in ["png_64x48.png", "jpg_restart.jpg"] {
            let url = try Corpus.url(file)
            #expect(try Image.load(url, maxPixels: 64 * 48).width == 64)
            #expect(throws: ImageError(file: url.path, reason: .tooLarge(width: 64, height: 48, limit: 64 * 48 - 1))) {
                try Image.load(url, maxPixels: 64 * 48 - 1)
            }
        }
        let webp = try Corpus.url("webp_lossless.webp")
        #expect(throws: ImageError(file: webp.path, reason: .tooLarge(width: 37, height: 23, limit: 100))) {
            try Image.load(webp, maxPixels: 100)
        }
    }

    /// libjpeg's fatal errors longjmp out of the decode mid-call; doing that many times over must neither
    /// crash nor disturb later decodes.
    @Test func libjpegFatalErrorsAreRecoverableRepeatedly() throws {
        let bad = try Corpus.url("bad_huffman.jpg")
        let good = try Corpus.url("jpg_rgb420.jpg")
        let reference = try Image.load(good)
        for _ in 0..<200 {
            #expect(throws: ImageError.self) { try Image.load(bad) }
        }
        do {
            _ = try Image.load(bad)
        } catch let error as ImageError {
            #expect(error.description.contains("libjpeg"), "\(error)")
        }
        #expect(try Image.load(good) == reference)
    }

    /// Was: reading a named pipe blocked until a writer came.
    @Test func aNamedPipeIsRefusedByTypeWithoutBlocking() throws {
        let url = try temporaryDirectory().appendingPathComponent("pipe.png")
        #expect(mkfifo(url.path, 0o600) == 0)
        do {
            _ = try ImageDecoder.read(url)
            Issue.record("a pipe decoded")
        } catch let error as ImageError {
            #expect("\(error)".contains("named pipe") && error.file == url.path)
        }
    }

    @Test func missingFileIsAnIOError() throws {
        let url = try temporaryDirectory().appendingPathComponent("absent.png")
        do {
            _ = try Image.load(url)
            Issue.record("a missing file decoded")
        } catch let error as ImageError {
            #expect(Self.kind(error.reason) == "io")
            #expect(error.file == url.path)
        }
    }
}
