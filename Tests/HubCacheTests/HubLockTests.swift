// Two writers on one cache: each blob is written under huggingface_hub's own lock file
// (.locks/models--org--name/<etag>.lock, flock), so two `inkwell download`s, or Inkwell and huggingface_hub, never
// write the same blob at once; the one that waits finds the blob in place.
import Foundation
import Testing
import TestSupport
@testable import HubCache

@Suite(.serialized) struct HubLockTests {
    static let id = HubRepoID(HubServer.repo)!

    /// Two `inkwell download` processes started together on one cache both succeed; each blob was fetched from
    /// the server once (the second process waited on the lock, then found it); the blobs match their hashes; and
    /// every blob's lock file is where huggingface_hub puts it.
    @Test func twoDownloadsShareOneCache() throws {
        let binary = Fixtures.packageRoot.appendingPathComponent(".build/debug/inkwell")
        #expect(FileManager.default.isExecutableFile(atPath: binary.path), "build first: swift build --build-tests")
        // 2 MB/s a file: the weights take a few seconds, so the two runs overlap.
        let server = try HubServer(["--rate", "2000000"])
        let cache = try temporaryDirectory()
        func start() throws -> (Process, Pipe) {
            let process = Process()
            process.executableURL = binary
            process.arguments = ["download", HubServer.repo]
            process.environment = ["HF_ENDPOINT": server.url, "HF_HUB_CACHE": cache.path, "HOME": cache.path, "PATH": "/usr/bin:/bin"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = out
            try process.run()
            return (process, out)
        }
        let first = try start()
        Thread.sleep(forTimeInterval: 0.3)
        let second = try start()
        for (process, out) in [first, second] {
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(text)")
        }
        let settings = HubSettings(endpoint: server.url, cache: cache)
        let plan = try HubDownloaderSync.plan(HubDownloader(client: HubClient(settings: settings)), Self.id)
        #expect(plan.cached.count == plan.files.count && plan.corrupt.isEmpty && plan.files.count == 10)
        let requests = try server.requests()
        for file in plan.files where file.etag.count == 64 {
            #expect(requests.filter { $0.method == "GET" && $0.path == "/cdn/\(file.etag)" }.count == 1, "\(file.path)")
        }
        let locks = cache.appendingPathComponent(".locks/models--inkwell-test--tiny-sd")
        let expected = Set(plan.files.map { "\($0.etag).lock" })
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: locks.path)) == expected)
        let mode = try FileManager.default.attributesOfItem(atPath: locks.appendingPathComponent(expected.first!).path)[.posixPermissions] as? Int
        #expect(mode == 0o664)
    }

    /// huggingface_hub holds the UNet blob's lock (its WeakFileLock, at the path it computes): Inkwell's download
    /// writes every other file, but neither the blob nor its .incomplete until the lock is released, then finishes.
    @Test func inkwellWaitsForHuggingfaceHubsLock() async throws {
        let server = try HubServer()
        let cache = try temporaryDirectory()
        let downloader = HubDownloader(client: HubClient(settings: HubSettings(endpoint: server.url, cache: cache)))
        let plan = try await downloader.plan(Self.id)
        let unet = try #require(plan.files.first { $0.path == "unet/diffusion_pytorch_model.safetensors" })

        let holder = Process()
        holder.executableURL = Fixtures.packageRoot.appendingPathComponent(".venv/bin/python")
        holder.arguments = [Fixtures.packageRoot.appendingPathComponent("reference/hub_lock.py").path, cache.path,
                            HubServer.repo, unet.etag, "3"]
        let out = Pipe()
        holder.standardOutput = out
        try holder.run()
        defer { kill(holder.processIdentifier, SIGKILL) }
        var text = ""
        while !text.contains("locked\n") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let lockPath = try #require(text.split(separator: "\n").first).description
        #expect(lockPath == BlobLock.path(cache: cache, repo: HubServer.repo, etag: unet.etag).path)

        let started = Date()
        try await downloader.fetch(plan)
        #expect(Date().timeIntervalSince(started) > 1.5)
        text += String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        holder.waitUntilExit()
        let report = try #require(text.split(separator: "\n").last)
        #expect(report == #"{"blob": false, "incomplete": false}"#)
        let verify = try await HubDownloader(client: HubClient(settings: HubSettings(endpoint: server.url, cache: cache))).plan(Self.id)
        #expect(verify.cached.count == plan.files.count)
    }
}

/// A plan from synchronous test code (the binary runs above are synchronous).
enum HubDownloaderSync {
    static func plan(_ downloader: HubDownloader, _ id: HubRepoID) throws -> HubDownloader.Plan {
        try ModelFetcher.wait { try await downloader.plan(id) }
    }
}
