// Serving files from runs/: content types, HEAD, ETags, thumbnails, and every way out of the folder
// we could think of (dot segments raw and percent-encoded once or twice, absolute paths, backslashes,
// NUL, symlinks to files and folders outside, hidden names), plus the refusal of writing methods.
import Foundation
import Hummingbird
import HummingbirdTesting
import Imaging
import Testing
import TestSupport
@testable import Dashboard

@Suite struct FilesTests {
    @Test func filesHaveTheirContentTypes() async throws {
        try await withDashboard { fixture, client, _ async throws in
            let sample = "alpha/samples/step_000010/p0_s1.png"
            let png = try await client.execute(uri: "/files/" + sample, method: .get)
            #expect(png.status == .ok)
            #expect(png.headers[.contentType] == "image/png")
            #expect(Array(png.body.readableBytesView) == Array(try Data(contentsOf: fixture.url(sample))))
            #expect(png.headers[.xContentTypeOptions] == "nosniff")

            let expectations: [(String, String)] = [
                ("alpha/config.toml", "text/plain; charset=utf-8"),
                ("alpha/log.csv", "text/plain; charset=utf-8"),
                ("pipe/summary.md", "text/plain; charset=utf-8"),
                ("pipe/plots/val_loss.svg", "image/svg+xml"),
                ("pipe/compare/index.html", "text/html; charset=utf-8"),
                ("alpha/state/trainer.json", "application/json; charset=utf-8"),
                ("alpha/lora/alpha-best.safetensors", "application/octet-stream"),
            ]
            for (path, type) in expectations {
                let response = try await client.execute(uri: "/files/" + path, method: .get)
                #expect(response.status == .ok, "\(path)")
                #expect(response.headers[.contentType] == type, "\(path)")
            }
            let weights = try await client.execute(uri: "/files/alpha/lora/alpha-best.safetensors", method: .get)
            #expect(weights.headers[.contentDisposition] == "attachment; filename=\"alpha-best.safetensors\"")

            // HEAD: the same headers, no body.
            let head = try await client.execute(uri: "/files/" + sample, method: .head)
            #expect(head.status == .ok)
            #expect(head.headers[.contentType] == "image/png")
            #expect(head.body.readableBytes == 0)

            // An unchanged file is not sent twice.
            let tag = try #require(png.headers[.eTag])
            var headers = HTTPFields()
            headers[.ifNoneMatch] = tag
            let again = try await client.execute(uri: "/files/" + sample, method: .get, headers: headers)
            #expect(again.status == .notModified)
            #expect(again.body.readableBytes == 0)

            // A name with a space, percent-encoded by the page.
            try fixture.write("notes", to: "alpha/my notes.txt")
            #expect(try await client.execute(uri: "/files/alpha/my%20notes.txt", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/files/alpha/none.png", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/files/alpha/samples", method: .get).status == .notFound)
        }
    }

    @Test func thumbnailsAreSmallPNGsCachedInMemory() async throws {
        try await withDashboard { _, client, server async throws in
            let uri = "/thumb/alpha/samples/step_000040/p1_s2.png?w=80"
            let response = try await client.execute(uri: uri, method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "image/png")
            let image = try ImageDecoder.decode(Array(response.body.readableBytesView)).image
            // 80 rounds up to the allowed width 96; the 128² sample keeps its aspect.
            #expect(image.width == 96 && image.height == 96)
            // Still a drawing: dark ink on white.
            #expect(image.pixels.min() ?? 255 < 128 && image.pixels.max() == 255)

            let again = try await client.execute(uri: "/thumb/alpha/samples/step_000040/p1_s2.png?w=96", method: .get)
            #expect(Array(again.body.readableBytesView) == Array(response.body.readableBytesView))
            #expect(await server.data.thumbnails.renders == 1)

            // Wider than the image: its own size.
            let big = try await client.execute(uri: "/thumb/alpha/samples/step_000040/p1_s2.png?w=512", method: .get)
            #expect(try ImageDecoder.decode(Array(big.body.readableBytesView)).image.width == 128)

            #expect(try await client.execute(uri: "/thumb/alpha/log.csv?w=96", method: .get).status == .unsupportedMediaType)
            #expect(try await client.execute(uri: "/thumb/pipe/plots/val_loss.png?w=96", method: .get).status == .unprocessableContent)
            #expect(try await client.execute(uri: "/thumb/alpha/samples/step_000040/p1_s2.png?w=wide", method: .get).status == .badRequest)
            #expect(try await client.execute(uri: "/thumb/alpha/samples/step_000040/p1_s2.png?w=0", method: .get).status == .badRequest)
        }
    }

    @Test func pathTraversalIsRefused() async throws {
        try await withDashboard { fixture, client, _ async throws in
            let fm = FileManager.default
            // Links inside runs/ that lead out, and one that stays in (which must keep working).
            try fm.createSymbolicLink(at: fixture.url("alpha/escape.txt"), withDestinationURL: fixture.base.appendingPathComponent("secret.txt"))
            try fm.createSymbolicLink(at: fixture.url("outside-link"), withDestinationURL: fixture.base.appendingPathComponent("outside"))
            try fm.createSymbolicLink(at: fixture.url("alpha/escape.png"), withDestinationURL: fixture.base.appendingPathComponent("secret.png"))
            try fm.createSymbolicLink(at: fixture.url("alpha/inside.csv"), withDestinationURL: fixture.url("beta/log.csv"))
            try fixture.write("hidden", to: "alpha/.hidden")

            let attempts = [
                "/files/../secret.txt",
                "/files/alpha/../../secret.txt",
                "/files/./alpha/../../secret.txt",
                "/files/%2e%2e/secret.txt",
                "/files/%2E%2E/secret.txt",
                "/files/alpha/%2e%2e/%2e%2e/secret.txt",
                "/files/..%2fsecret.txt",
                "/files/alpha%2f..%2f..%2fsecret.txt",
                "/files/%252e%252e/secret.txt",
                "/files/%252e%252e%252fsecret.txt",
                "/files/..%5csecret.txt",
                "/files/alpha\\..\\..\\secret.txt",
                "/files//etc/passwd",
                "/files/%2fetc%2fpasswd",
                "/files/%2F" + fixture.base.appendingPathComponent("secret.txt").path.dropFirst(),
                "/files/alpha/escape.txt",
                "/files/outside-link/secret.txt",
                "/files/alpha/.hidden",
                "/files/alpha/%2ehidden",
                "/files/alpha/log.csv%00.png",
                "/files/alpha/%zz",
                "/files/",
                "/thumb/../secret.png?w=96",
                "/thumb/%2e%2e/secret.png?w=96",
                "/thumb/alpha/escape.png?w=96",
            ]
            for uri in attempts {
                let response = try await client.execute(uri: uri, method: .get)
                #expect((400..<500).contains(response.status.code), "\(uri) → \(response.status.code)")
                #expect(!String(buffer: response.body).contains(RunsFixture.secret), "\(uri) leaked the file")
            }
            // Specific answers: a climb is 400 (or 403 when a link leads out), a missing file 404.
            #expect(try await client.execute(uri: "/files/alpha/escape.txt", method: .get).status == .forbidden)
            #expect(try await client.execute(uri: "/files/%2e%2e/secret.txt", method: .get).status == .badRequest)
            #expect(try await client.execute(uri: "/files/alpha/%zz", method: .get).status == .badRequest)

            let inside = try await client.execute(uri: "/files/alpha/inside.csv", method: .get)
            #expect(inside.status == .ok)
            #expect(String(buffer: inside.body).hasPrefix(RunsFixture.header))
        }
    }

    @Test func onlyGetAndHead() async throws {
        try await withDashboard { fixture, client, _ async throws in
            let before = try Data(contentsOf: fixture.url("alpha/log.csv"))
            for method in [HTTPRequest.Method.post, .put, .delete, .patch] {
                for uri in ["/api/index", "/files/alpha/log.csv", "/", "/nowhere"] {
                    let response = try await client.execute(uri: uri, method: method, body: ByteBuffer(string: "step\n99"))
                    #expect(response.status == .methodNotAllowed, "\(method) \(uri)")
                    #expect(response.headers[.allow] == "GET, HEAD")
                }
            }
            #expect(try Data(contentsOf: fixture.url("alpha/log.csv")) == before)
            #expect(try await client.execute(uri: "/api/index", method: .head).status == .ok)
        }
    }

    /// A binary moved without its resource folder stops at start with what to do (no crash), and a stray
    /// file in Assets/ is named.
    @Test func missingOrStrayPageFilesAreClearErrors() throws {
        let dir = try temporaryDirectory()
        #expect { try WebAssets.load(besideBinary: dir) } throws: {
            "\($0)".contains(dir.appendingPathComponent("Inkwell_Dashboard.resources/Assets").path)
                && "\($0)".contains("copy that folder along")
        }
        let assets = dir.appendingPathComponent("Inkwell_Dashboard.resources/Assets")
        try FileManager.default.createDirectory(at: assets, withIntermediateDirectories: true)
        try Data("<html></html>".utf8).write(to: assets.appendingPathComponent("index.html"))
        #expect(try WebAssets.load(besideBinary: dir).map(\.route) == ["/"])
        try Data().write(to: assets.appendingPathComponent("notes.txt"))
        #expect { try WebAssets.load(besideBinary: dir) } throws: { "\($0)".contains("notes.txt") }
    }
}
