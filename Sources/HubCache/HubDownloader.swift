// `inkwell download`: a repo's files into the Hugging Face cache, laid out as huggingface_hub lays them out
// (file_download.py _hf_hub_download_to_cache_dir), so diffusers and transformers find them, and Inkwell finds
// what they downloaded:
//   models--org--name/blobs/<etag>                  the bytes, named by the Hub's ETag, checked against it
//   models--org--name/blobs/<etag>.incomplete       a download under way; the next run resumes it (Range)
//   models--org--name/snapshots/<commit>/<path>     relative links into blobs/
//   models--org--name/refs/<revision>               the commit, written once every file is in place, so a
//                                                   stopped download never looks like a complete snapshot
//   .locks/models--org--name/<etag>.lock            held while a blob is written (BlobLock), by huggingface_hub
//                                                   too: a second process waits, then finds the blob there
// In two steps, so the command line can say what it will do before it does it: `plan` asks the Hub (the file
// list, then one HEAD per file) and checks what the cache already holds; `fetch` downloads the rest, a few
// files at once. Blobs already present are hashed: a corrupted one is fetched again.
import Foundation

public struct HubDownloader: Sendable {
    public let client: HubClient
    /// Files downloaded at once (huggingface_hub's snapshot_download uses 8 workers; fewer keeps each fast).
    public var concurrency = 4
    /// Resumes after a dropped connection before giving up; reset whenever bytes arrive (as http_get does).
    public var retries = 5
    /// Pause before a resume.
    public var retryDelay: Duration = .seconds(1)
    public let progress = HubDownloadProgress()

    public init(client: HubClient) { self.client = client }

    public struct Plan: Sendable {
        public let repo: String
        /// The revision asked for (`main` when none was).
        public let revision: String
        public let commit: String
        public let selection: HubFileSelection
        public let files: [HubClient.FileMetadata]
        /// Paths whose blob is already in the cache and matches its ETag.
        public let cached: Set<String>
        /// Paths whose blob is in the cache but does not match its ETag: fetched again.
        public let corrupt: Set<String>
        /// Bytes still to come (blobs counted once; the part of an `.incomplete` already there is not).
        public let bytesToFetch: Int64
        public let repoFolder: URL

        public var snapshot: URL {
            repoFolder.appendingPathComponent("snapshots").appendingPathComponent(commit)
        }
    }

    // MARK: - Plan

    public func plan(_ id: HubRepoID, variant: String? = nil, include: [String] = []) async throws -> Plan {
        guard !client.settings.offline else { throw HubError.offline(repo: id.repo) }
        if let problem = client.settings.proxies.problem { throw HubError.badProxy(problem) }
        let revision = id.revision ?? "main"
        let info = try await client.repoInfo(id.repo, revision: revision)
        let selection = HubFileSelection(files: info.files, variant: variant, include: include)
        guard !selection.files.isEmpty else {
            throw HubError.nothingSelected(repo: id.repo, include: include, files: info.files.count)
        }
        let files = try await Self.concurrently(selection.files, limit: 8) { path in
            try await client.metadata(repo: id.repo, revision: info.commit, path: path)
        }
        let folder = HubCache.repoFolder(id.repo, cache: client.settings.cache)
        var cached = Set<String>(), corrupt = Set<String>(), verdicts: [String: Bool] = [:]
        var toFetch: [String: Int64] = [:]
        for file in files {
            let blob = Self.blob(file.etag, in: folder)
            let good: Bool
            if let known = verdicts[file.etag] {
                good = known
            } else if FileManager.default.fileExists(atPath: blob.path) {
                good = try Self.matches(blob, file)
                verdicts[file.etag] = good
            } else {
                toFetch[file.etag] = max(0, (file.size ?? 0) - Self.size(of: Self.incomplete(file.etag, in: folder)))
                continue
            }
            if good { cached.insert(file.path) } else {
                corrupt.insert(file.path)
                toFetch[file.etag] = file.size ?? 0
            }
        }
        return Plan(repo: id.repo, revision: revision, commit: info.commit, selection: selection, files: files,
                    cached: cached, corrupt: corrupt, bytesToFetch: toFetch.values.reduce(0, +), repoFolder: folder)
    }

    // MARK: - Fetch

    /// Downloads what `plan` found missing or corrupt, links the snapshot and writes the ref; returns the snapshot.
    /// On cancellation (Ctrl-C) it stops at once: `.incomplete` files stay for the next run to resume.
    @discardableResult
    public func fetch(_ plan: Plan) async throws -> URL {
        let fm = FileManager.default
        let folder = plan.repoFolder
        try fm.createDirectory(at: folder.appendingPathComponent("blobs"), withIntermediateDirectories: true)
        progress.start(total: plan.bytesToFetch)
        // One download per blob: two paths with the same bytes share it.
        var blobs: [String: HubClient.FileMetadata] = [:]
        for file in plan.files where !plan.cached.contains(file.path) && blobs[file.etag] == nil { blobs[file.etag] = file }
        _ = try await Self.concurrently(blobs.values.sorted { $0.path < $1.path }, limit: concurrency) { file in
            try await fetchBlob(file, repo: plan.repo, folder: folder)
        }
        for file in plan.files {
            try Self.link(file, snapshot: plan.snapshot, folder: folder)
        }
        if plan.revision != plan.commit {
            try Self.writeRef(plan.commit, revision: plan.revision, folder: folder)
        }
        return plan.snapshot
    }

    /// One blob under its lock: what the lock's holder wrote while this one waited is checked and kept; a blob
    /// that does not match its ETag (the plan found it corrupt) is replaced.
    private func fetchBlob(_ file: HubClient.FileMetadata, repo: String, folder: URL) async throws {
        let lock = try await BlobLock.acquire(cache: client.settings.cache, repo: repo, etag: file.etag)
        defer { lock.release() }
        let blob = Self.blob(file.etag, in: folder)
        if FileManager.default.fileExists(atPath: blob.path) {
            if try Self.matches(blob, file) {
                progress.add(file.size ?? 0)
                return
            }
            try FileManager.default.removeItem(at: blob)
        }
        try await downloadBlob(file, repo: repo, folder: folder)
    }

    /// Downloads a blob into its `.incomplete` (resuming what is there), checks it and moves it into place.
    /// Called with the blob's lock held.
    private func downloadBlob(_ file: HubClient.FileMetadata, repo: String, folder: URL) async throws {
        let fm = FileManager.default
        let incomplete = Self.incomplete(file.etag, in: folder)
        if !fm.fileExists(atPath: incomplete.path) { _ = fm.createFile(atPath: incomplete.path, contents: nil) }
        let resumedFrom = Self.size(of: incomplete)
        progress.begin(file.path)
        defer { progress.end(file.path) }
        var left = retries
        while true {
            try Task.checkCancellation()
            let before = Self.size(of: incomplete)
            do {
                _ = try await client.fetch(file.location, repo: repo, path: file.path, into: incomplete) { progress.add(Int64($0)) }
                break
            } catch let interrupted as HubClient.Interrupted {
                if Self.size(of: incomplete) > before { left = retries }
                guard left > 0 else {
                    throw HubError.connectionLost(path: file.path, kept: Self.size(of: incomplete), incomplete: incomplete.path,
                                                  reason: interrupted.reason)
                }
                left -= 1
                try await Task.sleep(for: retryDelay)
            }
        }
        let wrongSize = file.size.map { $0 != Self.size(of: incomplete) } ?? false
        if try wrongSize || BlobDigest.mismatch(incomplete, etag: file.etag) != nil {
            let actual = try BlobDigest.kind(of: file.etag).map { try BlobDigest.digest(of: incomplete, as: $0) }
                ?? "\(Self.size(of: incomplete)) bytes"
            try? fm.removeItem(at: incomplete)
            if resumedFrom > 0 {
                // The bytes kept from an earlier run may be the bad ones: one more try from the start.
                progress.add(-resumedFrom)
                return try await downloadBlob(file, repo: repo, folder: folder)
            }
            throw HubError.checksumMismatch(path: file.path, expected: file.size.map { "\(file.etag) (\($0) bytes)" } ?? file.etag,
                                            actual: actual)
        }
        let blob = Self.blob(file.etag, in: folder)
        try? fm.removeItem(at: blob)
        try fm.moveItem(at: incomplete, to: blob)
    }

    // MARK: - Cache layout

    static func blob(_ etag: String, in folder: URL) -> URL {
        folder.appendingPathComponent("blobs").appendingPathComponent(etag)
    }

    static func incomplete(_ etag: String, in folder: URL) -> URL {
        folder.appendingPathComponent("blobs").appendingPathComponent(etag + ".incomplete")
    }

    static func size(of file: URL) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: file.path))?[.size] as? NSNumber)?.int64Value ?? 0
    }

    static func matches(_ blob: URL, _ file: HubClient.FileMetadata) throws -> Bool {
        if let size = file.size, size != Self.size(of: blob) { return false }
        return try BlobDigest.mismatch(blob, etag: file.etag) == nil
    }

    /// snapshots/<commit>/<path> → ../../blobs/<etag> (one more `..` per folder in the path), replacing what
    /// was there, as huggingface_hub's _create_symlink. Made under a temporary name and renamed over the path, so
    /// two processes linking the same snapshot never see a missing link or fail on an existing one.
    static func link(_ file: HubClient.FileMetadata, snapshot: URL, folder: URL) throws {
        let fm = FileManager.default
        let pointer = snapshot.appendingPathComponent(file.path)
        try fm.createDirectory(at: pointer.deletingLastPathComponent(), withIntermediateDirectories: true)
        let depth = file.path.split(separator: "/").count - 1
        let target = String(repeating: "../", count: 2 + depth) + "blobs/" + file.etag
        if (try? fm.destinationOfSymbolicLink(atPath: pointer.path)) == target { return }
        let temporary = pointer.deletingLastPathComponent().appendingPathComponent(".\(pointer.lastPathComponent).\(UUID().uuidString).tmp")
        try fm.createSymbolicLink(atPath: temporary.path, withDestinationPath: target)
        guard rename(temporary.path, pointer.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? fm.removeItem(at: temporary)
            throw HubCacheError(subject: pointer.path, message: "cannot link the snapshot file: \(reason)")
        }
    }

    /// refs/<revision> holds the commit, written through a temporary name (a reader never sees half of it).
    static func writeRef(_ commit: String, revision: String, folder: URL) throws {
        let ref = folder.appendingPathComponent("refs").appendingPathComponent(revision)
        try FileManager.default.createDirectory(at: ref.deletingLastPathComponent(), withIntermediateDirectories: true)
        if (try? String(contentsOf: ref, encoding: .utf8)) == commit { return }
        let temporary = ref.deletingLastPathComponent().appendingPathComponent(".\(ref.lastPathComponent).\(UUID().uuidString).tmp")
        try Data(commit.utf8).write(to: temporary)
        guard rename(temporary.path, ref.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw HubCacheError(subject: ref.path, message: "cannot write the ref: \(reason)")
        }
    }

    /// `body` over `items` with at most `limit` running at once; results in the items' order.
    static func concurrently<Item: Sendable, Result: Sendable>(
        _ items: [Item], limit: Int, _ body: @escaping @Sendable (Item) async throws -> Result
    ) async throws -> [Result] {
        try await withThrowingTaskGroup(of: (Int, Result).self) { group in
            var results = [Result?](repeating: nil, count: items.count)
            var next = 0
            func start() {
                guard next < items.count else { return }
                let index = next, item = items[index]
                group.addTask { (index, try await body(item)) }
                next += 1
            }
            for _ in 0..<max(1, limit) { start() }
            while let (index, result) = try await group.next() {
                results[index] = result
                start()
            }
            return results.map { $0! }
        }
    }
}

/// Bytes received so far and the files under way, read by the command line's progress line while `fetch` runs.
public final class HubDownloadProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var _total: Int64 = 0
    private var _done: Int64 = 0
    private var _active: [String] = []

    func start(total: Int64) { lock.withLock { _total = total; _done = 0 } }
    func add(_ bytes: Int64) { lock.withLock { _done += bytes } }
    func begin(_ path: String) { lock.withLock { _active.append(path) } }
    func end(_ path: String) { lock.withLock { _active.removeAll { $0 == path } } }

    public var total: Int64 { lock.withLock { _total } }
    public var done: Int64 { lock.withLock { _done } }
    /// The files being downloaded now, in the order they started.
    public var active: [String] { lock.withLock { _active } }
}
