// `inkwell download` against a local Hub (reference/hub_server.py, serving a repo diffusers wrote), checked by the
// real huggingface_hub and diffusers: what Inkwell downloads they load offline, what they download Inkwell uses,
// and the failures a network has (a dropped connection, corrupted bytes, a gated repo, no network at all).
import Foundation
import Testing
import TestSupport
@testable import HubCache
import StableDiffusion

@Suite(.serialized) struct HubDownloadTests {
    static let id = HubRepoID(HubServer.repo)!

    func downloader(_ server: HubServer, cache: URL, token: String? = nil) -> HubDownloader {
        var downloader = HubDownloader(client: HubClient(settings: HubSettings(endpoint: server.url, token: token,
                                                                                tokenSource: token.map { _ in "--token" }, cache: cache)))
        downloader.retryDelay = .zero
        return downloader
    }

    func download(_ downloader: HubDownloader, _ id: HubRepoID = id, variant: String? = nil, include: [String] = []) async throws -> HubDownloader.Plan {
        let plan = try await downloader.plan(id, variant: variant, include: include)
        try await downloader.fetch(plan)
        return plan
    }

    func blobNames(_ cache: URL) throws -> [String] {
        let blobs = HubCache.repoFolder(HubServer.repo, cache: cache).appendingPathComponent("blobs")
        return try FileManager.default.contentsOfDirectory(atPath: blobs.path).sorted()
    }

    /// Inkwell's download is a cache huggingface_hub and diffusers load offline, holding exactly the files diffusers
    /// itself downloads (no pickles, no root .ckpt), and Inkwell's pipeline loads it by repo id.
    @Test func whatInkwellDownloadsDiffusersLoads() async throws {
        let server = try HubServer()
        let cache = try temporaryDirectory()
        let plan = try await download(downloader(server, cache: cache))
        let source = try Fixtures.url("hub_repo", "tiny-sd")

        let python = try HubCheck.run(["load", cache.path, HubServer.repo, source.path])
        #expect(python.snapshot == plan.snapshot.resolvingSymlinksInPath().path)
        #expect(python.unet_equal == true)
        #expect(python.components == ["scheduler", "text_encoder", "tokenizer", "unet", "vae"])
        let diffusers = try HubCheck.run(["fill", server.url, try temporaryDirectory().path, HubServer.repo])
        #expect(python.files == diffusers.files)
        #expect(plan.selection.files.sorted() == diffusers.files)
        #expect(!python.files.contains { $0.hasSuffix(".bin") || $0.hasSuffix(".ckpt") })

        // Links are relative (the cache can move) and point at blobs named by the Hub's ETag.
        let link = plan.snapshot.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: link.path)
        #expect(target.hasPrefix("../../../blobs/") && target.count == "../../../blobs/".count + 64, "\(target)")
        #expect(try String(contentsOf: plan.repoFolder.appendingPathComponent("refs/main"), encoding: .utf8) == plan.commit)

        let snapshot = try HubCache.snapshot(Self.id, environment: ["HF_HUB_CACHE": cache.path])
        let pipeline = try StableDiffusionPipeline.load(.diffusersFolder(snapshot), device: .cpu, dtype: .float32)
        let local = try StableDiffusionPipeline.load(.diffusersFolder(source), device: .cpu, dtype: .float32)
        #expect(pipeline.unet.config == local.unet.config)
    }

    /// A cache that huggingface_hub filled from the same server (HF_ENDPOINT) loads in Inkwell, and a download into
    /// it finds every file already there (hashed against its ETag) and asks the server for no bytes.
    @Test func whatDiffusersDownloadsInkwellUses() async throws {
        let server = try HubServer()
        let cache = try temporaryDirectory()
        let filled = try HubCheck.run(["fill", server.url, cache.path, HubServer.repo])
        let snapshot = try HubCache.snapshot(Self.id, environment: ["HF_HUB_CACHE": cache.path])
        #expect(snapshot.resolvingSymlinksInPath().path == filled.snapshot)
        _ = try StableDiffusionPipeline.load(.diffusersFolder(snapshot), device: .cpu, dtype: .float32)

        let before = try server.requests().count
        let plan = try await download(downloader(server, cache: cache))
        #expect(plan.cached.count == plan.files.count && plan.corrupt.isEmpty && plan.bytesToFetch == 0)
        let gets = try server.requests().dropFirst(before).filter { $0.method == "GET" && !$0.path.hasPrefix("/api/") }
        #expect(gets.isEmpty, "\(gets.map(\.path))")

        // The fp16 variant: the same files diffusers picks with variant="fp16".
        let fp16 = try HubCheck.run(["fill", server.url, try temporaryDirectory().path, HubServer.repo, "fp16"])
        let ours = try await download(downloader(server, cache: try temporaryDirectory()), variant: "fp16")
        #expect(ours.selection.files.sorted() == fp16.files)
        #expect(fp16.files.contains("unet/diffusion_pytorch_model.fp16.safetensors"))
    }

    /// A connection dropped mid-file leaves `<etag>.incomplete`; the next run asks only for the rest (Range) and
    /// ends with the right bytes. With retries, one run does the same by itself.
    @Test func anInterruptedDownloadResumes() async throws {
        let kept = 100_000
        let server = try HubServer(["--drop-after", "\(kept)"])
        let cache = try temporaryDirectory()
        var first = downloader(server, cache: cache)
        first.retries = 0
        first.concurrency = 1
        var lost: (path: String, kept: Int64, incomplete: String)?
        do {
            _ = try await download(first)
            Issue.record("the dropped connection was not reported")
        } catch HubError.connectionLost(let path, let bytes, let incomplete, _) {
            lost = (path, bytes, incomplete)
        }
        let (path, bytes, incomplete) = try #require(lost)
        // What reached the file before the drop (the client may drop bytes still buffered when the error arrives).
        #expect(bytes > 0 && bytes <= Int64(kept))
        #expect(incomplete.hasSuffix(".incomplete"))
        #expect(HubDownloader.size(of: URL(fileURLWithPath: incomplete)) == bytes)
        #expect(throws: HubCacheError.self) { try HubCache.snapshot(Self.id, environment: ["HF_HUB_CACHE": cache.path]) }

        // The next run resumes that file where it stopped, and every other file the server drops too.
        let plan = try await download(downloader(server, cache: cache))
        let sha = String(URL(fileURLWithPath: incomplete).lastPathComponent.dropLast(".incomplete".count))
        #expect(plan.files.contains { $0.etag == sha && $0.path == path })
        #expect(!FileManager.default.fileExists(atPath: incomplete))
        let lfs = Set(plan.files.filter { $0.etag.count == 64 }.map(\.etag))
        #expect(lfs.count == 3)
        for blob in lfs {
            let ranges = try server.requests().filter { $0.path == "/cdn/\(blob)" }.map(\.range)
            #expect(ranges.count == 2 && ranges[0] == nil, "\(blob): \(ranges)")
            let from = ranges.last.flatMap { $0 }.flatMap { Int64($0.dropFirst("bytes=".count).dropLast()) } ?? 0
            #expect(from > 0 && from <= Int64(kept), "\(blob): \(ranges)")
            if blob == sha { #expect(from == bytes) }
        }
        let verify = try await downloader(server, cache: cache).plan(Self.id)
        #expect(verify.cached.count == plan.files.count)
    }

    /// `inkwell download` as a user runs it, stopped with Ctrl-C (SIGINT) in the middle of a slow file: it exits at
    /// once with the resume message and keeps the `.incomplete`; the same command then asks only for the rest.
    @Test func ctrlCStopsCleanlyAndTheSameCommandResumes() async throws {
        let binary = Fixtures.packageRoot.appendingPathComponent(".build/debug/inkwell")
        #expect(FileManager.default.isExecutableFile(atPath: binary.path), "build first: swift build --build-tests")
        let server = try HubServer(["--rate", "1000000"])
        let cache = try temporaryDirectory()
        func inkwell(stopAfter seconds: Double?) throws -> (Int32, String) {
            let process = shellProcess(binary, ["download", HubServer.repo, "--cache-dir", cache.path])
            process.environment = ["HF_ENDPOINT": server.url, "HOME": cache.path, "PATH": "/usr/bin:/bin"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = out
            try process.run()
            if let seconds {
                Thread.sleep(forTimeInterval: seconds)
                kill(process.processIdentifier, SIGINT)
            }
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
        // 14 MB at 1 MB/s a file: three seconds in, every weight file is part-way.
        let (status, stopped) = try inkwell(stopAfter: 3)
        #expect(status != 0 && stopped.contains("run the same command to resume"), "\(stopped)")
        let partial = try blobNames(cache).filter { $0.hasSuffix(".incomplete") }
        #expect(!partial.isEmpty, "no .incomplete kept: \(stopped)")
        #expect(throws: HubCacheError.self) { try HubCache.snapshot(Self.id, environment: ["HF_HUB_CACHE": cache.path]) }

        let (again, output) = try inkwell(stopAfter: nil)
        #expect(again == 0, "\(output)")
        for name in partial {
            let ranges = try server.requests().filter { $0.path == "/cdn/\(name.dropLast(".incomplete".count))" }.map(\.range)
            #expect(ranges.count == 2 && ranges[0] == nil && ranges[1]?.hasPrefix("bytes=") == true, "\(name): \(ranges)")
        }
        let snapshot = try HubCache.snapshot(Self.id, environment: ["HF_HUB_CACHE": cache.path])
        _ = try StableDiffusionPipeline.load(.diffusersFolder(snapshot), device: .cpu, dtype: .float32)
    }

    /// A blob altered in the cache is found by its hash and fetched again; bytes that arrive altered are refused.
    @Test func corruptedBytesAreDetected() async throws {
        let server = try HubServer(["--corrupt", "\(HubServer.repo):unet/diffusion_pytorch_model.safetensors"])
        let cache = try temporaryDirectory()
        var oneAtATime = downloader(server, cache: cache)
        oneAtATime.concurrency = 1
        do {
            _ = try await download(oneAtATime)
            Issue.record("corrupted bytes were accepted")
        } catch HubError.checksumMismatch(let path, _, _) {
            #expect(path == "unet/diffusion_pytorch_model.safetensors")
        }
        // Nothing of it is kept: no blob, no .incomplete (the files before it are complete blobs).
        #expect(!(try blobNames(cache)).contains { $0.hasSuffix(".incomplete") || $0.count != 40 && $0.count != 64 })
        #expect(try blobNames(cache).count == 7)
        let plan = try await download(downloader(server, cache: cache))
        let unet = try #require(plan.files.first { $0.path == "unet/diffusion_pytorch_model.safetensors" })

        // Flip a byte of the blob in the cache: the next download finds it and fetches it again.
        let blob = plan.repoFolder.appendingPathComponent("blobs").appendingPathComponent(unet.etag)
        var bytes = try Data(contentsOf: blob)
        bytes[1000] ^= 0xFF
        try bytes.write(to: blob)
        let gets = try server.requests().filter { $0.path == "/cdn/\(unet.etag)" }.count
        let again = try await download(downloader(server, cache: cache))
        #expect(again.corrupt == [unet.path])
        #expect(try server.requests().filter { $0.path == "/cdn/\(unet.etag)" }.count == gets + 1)
        #expect(try await downloader(server, cache: cache).plan(Self.id).cached.count == plan.files.count)
    }

    /// A gated repo: no token says to accept the licence on the model page and set a token; a token without access
    /// says the same; the token from the token file works, and is never sent to the CDN's origin.
    @Test func aGatedRepoNeedsAnAcceptedToken() async throws {
        let gated = "inkwell-test/gated-sd"
        let folder = try Fixtures.url("hub_repo", "tiny-sd").path
        let server = try HubServer(["--repo", "\(gated)=\(folder)", "--gated", gated, "--token", "hf_granted", "--denied-token", "hf_waiting"])
        let id = try #require(HubRepoID(gated))
        let cache = try temporaryDirectory()
        await #expect { _ = try await download(downloader(server, cache: cache), id) } throws: {
            let text = "\($0)"
            return $0 as? HubError == .gated(repo: gated, page: "\(server.url)/\(gated)", denied: false, tokenSource: nil)
                && text.contains("accept its licence on \(server.url)/\(gated)") && text.contains("HF_TOKEN")
        }
        await #expect { _ = try await download(downloader(server, cache: cache, token: "hf_waiting"), id) } throws: {
            $0 as? HubError == .gated(repo: gated, page: "\(server.url)/\(gated)", denied: true, tokenSource: "--token")
        }
        let home = try temporaryDirectory()
        try "hf_granted\n".write(to: home.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        let settings = HubSettings(environment: ["HF_HOME": home.path, "HF_ENDPOINT": server.url + "/"])
        #expect(settings.tokenSource == home.appendingPathComponent("token").path && settings.endpoint == server.url)
        #expect(settings.cache.path == home.appendingPathComponent("hub").path)
        let plan = try await download(HubDownloader(client: HubClient(settings: settings)), id)
        #expect(plan.files.count == 10)
        let requests = try server.requests()
        #expect(requests.filter { $0.path.hasPrefix("/\(gated)/resolve/") && $0.authorization == "Bearer hf_granted" }.count >= 10)
        #expect(requests.filter { $0.path.hasPrefix("/cdn/") }.allSatisfy { $0.authorization == nil })
    }

    /// HF_HUB_OFFLINE=1: the download refuses before any request; a cached model still resolves.
    @Test func offlineNeverTouchesTheNetwork() async throws {
        let server = try HubServer()
        let cache = try temporaryDirectory()
        let settings = HubSettings(environment: ["HF_HUB_OFFLINE": "1", "HF_ENDPOINT": server.url, "HF_HUB_CACHE": cache.path])
        #expect(settings.offline)
        await #expect(throws: HubError.offline(repo: HubServer.repo)) {
            _ = try await HubDownloader(client: HubClient(settings: settings)).plan(Self.id)
        }
        #expect(try server.requests().isEmpty)
    }

    /// Unknown repos, revisions and hosts get their own messages; a renamed repo (a relative 307) is followed;
    /// --include picks exactly the files it names, pickles included when asked.
    @Test func missesRenamesAndInclude() async throws {
        let server = try HubServer(["--alias", "inkwell-test/old-name=\(HubServer.repo)"])
        let cache = try temporaryDirectory()
        await #expect(throws: HubError.repoNotFound(repo: "inkwell-test/absent", endpoint: server.url, tokenSource: nil)) {
            _ = try await download(downloader(server, cache: cache), HubRepoID("inkwell-test/absent")!)
        }
        await #expect(throws: HubError.revisionNotFound(repo: HubServer.repo, revision: "v9")) {
            _ = try await download(downloader(server, cache: cache), HubRepoID(HubServer.repo + "@v9")!)
        }
        let client = HubClient(settings: HubSettings(endpoint: server.url, cache: cache))
        let renamed = try await client.metadata(repo: "inkwell-test/old-name", revision: "main", path: "unet/config.json")
        let direct = try await client.metadata(repo: HubServer.repo, revision: "main", path: "unet/config.json")
        #expect(renamed == direct)

        let picked = try await download(downloader(server, cache: cache), include: ["*.ckpt", "unet/"])
        #expect(picked.selection.files == ["tiny-sd.ckpt", "unet/config.json", "unet/diffusion_pytorch_model.bin",
                                          "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.safetensors"])
        await #expect(throws: HubError.nothingSelected(repo: HubServer.repo, include: ["*.gguf"], files: 16)) {
            _ = try await download(downloader(server, cache: cache), include: ["*.gguf"])
        }

        let nowhere = HubClient(settings: HubSettings(endpoint: "http://127.0.0.1:9", cache: cache))
        await #expect { _ = try await nowhere.repoInfo(HubServer.repo, revision: "main") } throws: {
            guard case HubError.unreachable(let url, _) = $0 else { return false }
            return url.hasPrefix("http://127.0.0.1:9/api/models/") && "\($0)".contains("HF_HUB_OFFLINE=1")
        }
    }
}
