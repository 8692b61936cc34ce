// A model named by repo id and missing from the cache is downloaded where it is named (ModelLocation), as
// `inkwell download` would fetch it, unless HF_HUB_OFFLINE says no; checked with the real binary against the local
// Hub (reference/hub_server.py) and with the real huggingface_hub reading the cache afterwards.
import Foundation
import Imaging
import Testing
import TestSupport
@testable import HubCache

@Suite(.serialized) struct ImplicitDownloadTests {
    static let binary = Fixtures.packageRoot.appendingPathComponent(".build/debug/inkwell")

    /// Runs the binary with only the given environment (and a private HOME); returns its status and output.
    func inkwell(_ arguments: [String], environment: [String: String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        process.environment = ["HOME": try temporaryDirectory().path, "PATH": "/usr/bin:/bin"].merging(environment) { $1 }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    func generate(_ model: String, out: URL, environment: [String: String]) throws -> (status: Int32, output: String) {
        try inkwell(["generate", "--model", model, "--prompt", "a bold black outline of a cat", "--steps", "2",
                     "--size", "64", "--seed", "7", "--device", "cpu", "--out", out.path, "--no-hash"], environment: environment)
    }

    func images(in folder: URL) throws -> [Image] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".png") }.sorted()
            .map { try Image.load(folder.appendingPathComponent($0)) }
    }

    /// `inkwell generate --model org/name` with an empty cache downloads the repo (progress on stderr), makes the
    /// same image as the local folder, and leaves a cache the real huggingface_hub and diffusers load offline; the
    /// next run, offline, uses it without a request.
    @Test func generateDownloadsWhatItLacks() throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build first: swift build --build-tests")
        let server = try HubServer()
        let cache = try temporaryDirectory()
        let environment = ["HF_ENDPOINT": server.url, "HF_HUB_CACHE": cache.path]
        let fromHub = try temporaryDirectory(), fromFolder = try temporaryDirectory()
        let (status, output) = try generate(HubServer.repo, out: fromHub, environment: environment)
        #expect(status == 0, "\(output)")
        #expect(output.contains("\(HubServer.repo) is not in the Hugging Face cache: downloading it"), "\(output)")
        #expect(output.contains("10 files: 10 to fetch"), "\(output)")
        let source = try Fixtures.url("hub_repo", "tiny-sd")
        let (localStatus, localOutput) = try generate(source.path, out: fromFolder, environment: environment)
        #expect(localStatus == 0, "\(localOutput)")
        let hubImages = try images(in: fromHub), folderImages = try images(in: fromFolder)
        #expect(hubImages.count == 1 && hubImages == folderImages)

        let python = try HubCheck.run(["load", cache.path, HubServer.repo, source.path])
        #expect(python.unet_equal == true)
        #expect(python.snapshot == (try HubCache.snapshot(HubRepoID(HubServer.repo)!, environment: environment)).resolvingSymlinksInPath().path)
        #expect(!python.files.contains { $0.hasSuffix(".bin") || $0.hasSuffix(".ckpt") })

        let before = try server.requests().count
        let again = try generate(HubServer.repo, out: try temporaryDirectory(), environment: environment.merging(["HF_HUB_OFFLINE": "1"]) { $1 })
        #expect(again.status == 0 && !again.output.contains("downloading"), "\(again.output)")
        #expect(try server.requests().count == before)
    }

    /// HF_HUB_OFFLINE=1 (any of huggingface_hub's true values): no request, and the error prints the command that
    /// downloads the model.
    @Test func offlineSaysHowToDownload() throws {
        let server = try HubServer()
        for value in ["1", "true", "YES"] {
            let (status, output) = try generate(HubServer.repo + "@main", out: try temporaryDirectory(),
                                                environment: ["HF_ENDPOINT": server.url, "HF_HUB_CACHE": try temporaryDirectory().path,
                                                              "HF_HUB_OFFLINE": value])
            #expect(status != 0)
            #expect(output.contains("`inkwell download \(HubServer.repo) --revision main`") && output.contains("HF_HUB_OFFLINE is set"), "\(output)")
        }
        #expect(try server.requests().isEmpty)
    }

    /// A download that fails names the repo and the file and says what to do; the same command then works.
    @Test func aFailedDownloadNamesRepoAndFile() throws {
        let file = "unet/diffusion_pytorch_model.safetensors"
        let server = try HubServer(["--corrupt", "\(HubServer.repo):\(file)"])
        let environment = ["HF_ENDPOINT": server.url, "HF_HUB_CACHE": try temporaryDirectory().path]
        let (status, output) = try generate(HubServer.repo, out: try temporaryDirectory(), environment: environment)
        #expect(status != 0)
        #expect(output.contains("\(HubServer.repo) is not in the Hugging Face cache") && output.contains("downloading it failed")
                && output.contains("\(file): the downloaded bytes hash to") && output.contains("run the same command again"), "\(output)")
        let again = try generate(HubServer.repo, out: try temporaryDirectory(), environment: environment)
        #expect(again.status == 0, "\(again.output)")

        let absent = try generate("inkwell-test/absent", out: try temporaryDirectory(), environment: environment)
        #expect(absent.status != 0 && absent.output.contains("inkwell-test/absent: no such model on \(server.url)"), "\(absent.output)")
    }

    /// `inkwell train` naming a repo id the cache lacks, with a dataset path that is wrong: the dataset problem is
    /// reported at once and nothing is downloaded (no request at all); offline, the model's own problem is listed too.
    @Test func aConfigWithOtherProblemsDownloadsNothing() throws {
        let server = try HubServer()
        let dir = try temporaryDirectory()
        let config = dir.appendingPathComponent("train.toml")
        try """
            [model]
            path = "\(HubServer.repo)"
            device = "cpu"
            [data]
            dataset = "\(dir.appendingPathComponent("no-such-dataset").path)"
            captions = "vanilla"
            resolution = 64
            [training]
            max_steps = 1
            [samples]
            every = 0
            [output]
            dir = "\(dir.appendingPathComponent("runs").path)"
            """.write(to: config, atomically: true, encoding: .utf8)
        let cache = try temporaryDirectory()
        let environment = ["HF_ENDPOINT": server.url, "HF_HUB_CACHE": cache.path]
        let (status, output) = try inkwell(["train", "--config", config.path], environment: environment)
        #expect(status != 0 && output.contains("data.dataset: ") && !output.contains("model.path"), "\(output)")
        #expect(try server.requests().isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.path).isEmpty)

        let offline = try inkwell(["train", "--config", config.path], environment: environment.merging(["HF_HUB_OFFLINE": "1"]) { $1 })
        #expect(offline.output.contains("model.path: ") && offline.output.contains("`inkwell download \(HubServer.repo)`"), "\(offline.output)")
    }

    /// The library entry point: a revision and a variant are what gets downloaded; a commit needs no ref.
    @Test func revisionAndVariantAreHonoured() async throws {
        let server = try HubServer()
        let cache = try temporaryDirectory()
        let environment = ["HF_ENDPOINT": server.url, "HF_HUB_CACHE": cache.path]
        let commit = try await HubClient(settings: HubSettings(environment: environment)).repoInfo(HubServer.repo, revision: "main").commit
        let snapshot = try await Task.detached {
            try ModelLocation.resolve("\(HubServer.repo)@\(commit)", variant: "fp16", environment: environment)
        }.value
        #expect(snapshot.lastPathComponent == commit)
        let unet = try FileManager.default.contentsOfDirectory(atPath: snapshot.appendingPathComponent("unet").path).sorted()
        #expect(unet == ["config.json", "diffusion_pytorch_model.fp16.safetensors"])
        // A commit is its own snapshot: no refs/main claims it.
        #expect(!FileManager.default.fileExists(atPath: HubCache.repoFolder(HubServer.repo, cache: cache).appendingPathComponent("refs/main").path))
        #expect(try ModelLocation.resolve("\(HubServer.repo)@\(commit)", environment: environment.merging(["HF_HUB_OFFLINE": "1"]) { $1 }) == snapshot)
    }
}
