// Repo ids resolved in a Hugging Face cache as huggingface_hub resolves them (its snapshot_download with
// local_files_only, and its constants for the cache folder), on a cache that diffusers loads offline.
import Foundation
import Testing
import TestSupport
import HubCache
import StableDiffusion

private struct Expected: Decodable {
    struct Choice: Decodable {
        let environment: [String: String]
        let cache: String
    }
    let cache: String
    let repo: String
    let snapshots: [String: String]
    let environments: [Choice]

    static func load() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Fixtures.url("hub_cache", "expected.json")))
    }
}

@Suite struct HubCacheTests {
    @Test func revisionsResolveToHuggingfaceHubsSnapshots() throws {
        let expected = try Expected.load()
        #expect(expected.snapshots.count == 3)
        for (id, path) in expected.snapshots {
            let repoID = try #require(HubRepoID(id))
            let snapshot = try HubCache.snapshot(repoID, environment: ["HF_HUB_CACHE": expected.cache])
            #expect(snapshot.resolvingSymlinksInPath().path == path, "\(id)")
        }
    }

    @Test func theCacheFolderIsHuggingfaceHubs() throws {
        for choice in try Expected.load().environments {
            #expect(HubCache.directory(environment: choice.environment).path == choice.cache, "\(choice.environment)")
        }
    }

    @Test func idsAndMisses() throws {
        let expected = try Expected.load()
        #expect(HubRepoID("stable-diffusion-v1-5/stable-diffusion-v1-5")?.revision == nil)
        #expect(HubRepoID("org/name@refs/pr/1")?.revision == "refs/pr/1")
        for bad in ["name", "a/b/c", "/abs/path", "org/na me", "org/name@../../x", "./x", "org/name@"] {
            #expect(HubRepoID(bad) == nil, "\(bad)")
        }
        // Offline: a miss is an error that says how to download (online, it would be downloaded).
        let env = ["HF_HUB_CACHE": expected.cache, "HF_HUB_OFFLINE": "1"]
        for (id, says) in [("inkwell-test/absent", "not in the Hugging Face cache"), ("inkwell-test/tiny-sd@v9", "no revision 'v9'")] {
            #expect(throws: HubCacheError.self) { try HubCache.snapshot(HubRepoID(id)!, environment: env) }
            do { _ = try HubCache.snapshot(HubRepoID(id)!, environment: env) } catch {
                #expect("\(error)".contains(says) && "\(error)".contains("`inkwell download \(HubRepoID(id)!.repo)"), "\(error)")
            }
        }
        // A local path that exists wins over a repo id of the same spelling; a missing one says both.
        let dir = try temporaryDirectory()
        #expect(try ModelLocation.resolve(dir.path, environment: env).path == dir.path)
        #expect { try ModelLocation.resolve("models/sd15", environment: env) } throws: {
            "\($0)".contains("no such file or folder, and as a Hugging Face repo id: models/sd15: not in")
                && "\($0)".contains("HF_HUB_OFFLINE is set, so Inkwell does not download it")
        }
    }

    /// `--model inkwell-test/tiny-sd` loads the pipeline from the cache, with the revision's own files.
    @Test func aRepoIdLoadsThePipeline() throws {
        let expected = try Expected.load()
        setenv("HF_HUB_CACHE", expected.cache, 1)
        defer { unsetenv("HF_HUB_CACHE") }
        let source = try ModelSource(path: expected.repo)
        guard case .diffusersFolder(let folder) = source else { Issue.record("\(source) is not a diffusers folder"); return }
        #expect(folder.resolvingSymlinksInPath().path == expected.snapshots[expected.repo])
        let pipeline = try StableDiffusionPipeline.load(source, device: .cpu, dtype: .float32)
        let local = try StableDiffusionPipeline.load(.diffusersFolder(try Fixtures.url("pipeline", "model")), device: .cpu, dtype: .float32)
        #expect(pipeline.unet.config == local.unet.config)
        // v1's snapshot has no scheduler config: the error names that file in v1's snapshot.
        #expect { try StableDiffusionPipeline.load(try ModelSource(path: expected.repo + "@v1"), device: .cpu) } throws: {
            "\($0)".contains("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab/scheduler/scheduler_config.json")
        }
    }
}
