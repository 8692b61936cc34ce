// A model fetched because it was named and is not in the cache (ModelLocation decides when): the same plan and
// files as `inkwell download REPO [--variant V]`, waited for by the synchronous commands, with what happens
// told to an observer (the command line draws its progress line on stderr; the default prints plain lines).
import Foundation

/// What an implicit download shows while it runs.
public protocol ModelDownloadObserver: Sendable {
    /// The Hub answered: what will come, and from where.
    func started(_ id: HubRepoID, plan: HubDownloader.Plan, settings: HubSettings)
    /// Polled a few times a second while files come in.
    func progress(_ progress: HubDownloadProgress)
    /// The snapshot is complete (`error` nil), or the download failed.
    func finished(_ id: HubRepoID, snapshot: URL?, error: Error?)
}

/// A download that failed: the repo, where it was going, and the Hub's reason (which names the file and what
/// to do).
public struct ModelDownloadError: Error, CustomStringConvertible {
    public let id: HubRepoID
    public let cache: URL
    public let reason: Error

    public var description: String {
        "\(id) is not in the Hugging Face cache \(cache.path), and downloading it failed: \(reason)"
    }
}

public enum ModelFetcher {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var current: any ModelDownloadObserver = PlainDownloadObserver()

    /// Who is told about implicit downloads (the command line installs its progress line).
    public static var observer: any ModelDownloadObserver {
        get { lock.withLock { current } }
        set { lock.withLock { current = newValue } }
    }

    /// Downloads `id` into `settings.cache` and returns its snapshot folder. Blocks the calling thread: it is for
    /// synchronous callers (the commands); async code uses HubDownloader itself.
    public static func download(_ id: HubRepoID, variant: String?, settings: HubSettings) throws -> URL {
        let observer = observer
        let downloader = HubDownloader(client: HubClient(settings: settings))
        do {
            let plan = try wait { try await downloader.plan(id, variant: variant) }
            observer.started(id, plan: plan, settings: settings)
            let snapshot = try wait(polling: { observer.progress(downloader.progress) }) { try await downloader.fetch(plan) }
            observer.finished(id, snapshot: snapshot, error: nil)
            return snapshot
        } catch {
            observer.finished(id, snapshot: nil, error: error)
            throw ModelDownloadError(id: id, cache: settings.cache, reason: error)
        }
    }

    /// Runs `work` on the concurrency pool and waits for it here, calling `polling` every 0.2 s.
    static func wait<T: Sendable>(polling: () -> Void = {}, _ work: @escaping @Sendable () async throws -> T) throws -> T {
        let box = Outcome<T>()
        Task {
            do { box.finish(.success(try await work())) } catch { box.finish(.failure(error)) }
        }
        while box.done.wait(timeout: .now() + 0.2) == .timedOut { polling() }
        return try box.result!.get()
    }
}

private final class Outcome<T: Sendable>: @unchecked Sendable {
    let done = DispatchSemaphore(value: 0)
    private(set) var result: Result<T, any Error>?
    func finish(_ result: Result<T, any Error>) {
        self.result = result
        done.signal()
    }
}

/// The library's default: plain lines on stderr (what comes, a line every 5 s, done), for callers that draw
/// nothing of their own.
public struct PlainDownloadObserver: ModelDownloadObserver {
    private final class Clock: @unchecked Sendable {
        let lock = NSLock()
        var last = Date()
    }
    private let clock = Clock()

    public init() {}

    public func started(_ id: HubRepoID, plan: HubDownloader.Plan, settings: HubSettings) {
        Self.write("\(id) is not in the Hugging Face cache: downloading \(plan.files.count) files "
                   + String(format: "(%.1f MB)", Double(plan.bytesToFetch) / 1e6) + " from \(settings.endpoint) into \(settings.cache.path)")
    }

    public func progress(_ progress: HubDownloadProgress) {
        let due = clock.lock.withLock {
            guard Date().timeIntervalSince(clock.last) >= 5 else { return false }
            clock.last = Date()
            return true
        }
        if due { Self.write(String(format: "  %.1f of %.1f MB", Double(progress.done) / 1e6, Double(progress.total) / 1e6)) }
    }

    public func finished(_ id: HubRepoID, snapshot: URL?, error: Error?) {
        if let snapshot { Self.write("\(id) is in \(snapshot.path)") }
    }

    static func write(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
