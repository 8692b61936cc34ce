// `inkwell download REPO[@REV]`: a model from the Hugging Face Hub into the Hugging Face cache, only the files
// Inkwell uses (HubCache's HubDownloader does the work; this parses, prints and turns Ctrl-C into a clean stop).
// The same summary and progress line show implicit downloads (a command naming a repo id the cache lacks).
import ArgumentParser
import Foundation
import HubCache

struct Download: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a model from the Hugging Face Hub into the Hugging Face cache (resumable).",
        discussion: """
        Fetches the safetensors weights, configs and tokenizer files (never pickled .bin/.ckpt files unless --include \
        names them) into $HF_HUB_CACHE (else $HF_HOME/hub, else ~/.cache/huggingface/hub), laid out as \
        huggingface_hub does, so diffusers and transformers use the same files. Then name the model by its id: \
        `inkwell generate --model REPO` (which also downloads a missing repo by itself, unless HF_HUB_OFFLINE=1). \
        Gated models need a token (--token, HF_TOKEN or `hf auth login`) from an account that accepted the licence \
        on the model's page; HF_ENDPOINT points at a mirror; HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured.
        """)

    @Argument(help: "The repo id, org/name (optionally org/name@revision).") var repo: String
    @Option(help: "A branch, tag or commit (default main).") var revision: String?
    @Option(help: "The weights variant, as diffusers names them (fp16: *.fp16.safetensors where a folder has them).")
    var variant: String?
    @Option(name: .customLong("include"), help: ArgumentHelp("Only the files matching GLOB (repeatable; `*` crosses folders, `unet/` is everything under unet/).", valueName: "GLOB"))
    var include: [String] = []
    @Option(help: "An access token for gated or private models (default: HF_TOKEN, else the token file of `hf auth login`).")
    var token: String?
    @Option(help: "The cache folder (default: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub).")
    var cacheDir: String?

    func run() throws {
        guard var id = HubRepoID(repo) else {
            throw ValidationError("'\(repo)' is not a Hub repo id: expected org/name or org/name@revision")
        }
        if let revision {
            guard id.revision == nil || id.revision == revision else {
                throw ValidationError("two revisions: '\(id.revision!)' in \(repo) and --revision \(revision)")
            }
            guard let checked = HubRepoID("\(id.repo)@\(revision)") else { throw ValidationError("--revision '\(revision)' is not a revision name") }
            id = checked
        }
        let settings = HubSettings(token: token, cache: cacheDir.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) })
        let downloader = HubDownloader(client: HubClient(settings: settings))
        let interruption = Interruption.install()

        let (target, variant, include) = (id, variant, include)
        let plan = try wait(interruption) { try await downloader.plan(target, variant: variant, include: include) }
        say(Self.summary(plan, settings: settings))
        if plan.bytesToFetch == 0 && plan.corrupt.isEmpty && plan.cached.count == plan.files.count {
            say("all \(plan.files.count) files are in the cache already (checked against their hashes)")
        }
        let line = plan.bytesToFetch > 0 ? ByteProgress(total: plan.bytesToFetch) : nil
        let snapshot: URL
        do {
            snapshot = try wait(interruption, progress: { line?.update(downloader.progress) }) { try await downloader.fetch(plan) }
        } catch {
            line?.finish()
            throw error
        }
        line?.complete()
        say("\(id.repo) @ \(plan.revision) is in \(snapshot.path)")
        say("use it as: inkwell generate --model \(id.description) …")
    }

    /// What will be fetched, what is cached, what is left out and why.
    static func summary(_ plan: HubDownloader.Plan, settings: HubSettings) -> String {
        var lines = ["\(plan.repo) @ \(plan.revision) (commit \(plan.commit.prefix(12))) from \(settings.endpoint) into \(settings.cache.path)"]
        let megabytes = String(format: "%.1f", Double(plan.bytesToFetch) / 1e6)
        lines.append("  \(plan.files.count) files: \(plan.files.count - plan.cached.count) to fetch (\(megabytes) MB), "
                     + "\(plan.cached.count) in the cache" + (plan.corrupt.isEmpty ? "" : ", \(plan.corrupt.count) corrupt in the cache (fetched again: \(plan.corrupt.sorted().joined(separator: ", ")))"))
        let reasons = Dictionary(grouping: plan.selection.skipped, by: \.reason)
        for (reason, files) in reasons.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let names = files.map(\.path)
            lines.append("  skipped \(names.count) (\(reason.rawValue)): " + names.prefix(4).joined(separator: ", ") + (names.count > 4 ? ", …" : ""))
        }
        return lines.joined(separator: "\n")
    }

    /// Runs `work` on the concurrency pool while this (synchronous) command waits, redrawing `progress` and
    /// cancelling the work on Ctrl-C; a cancelled download leaves its `.incomplete` files for the next run.
    private func wait<T: Sendable>(_ interruption: Interruption, progress: () -> Void = {},
                                   _ work: @escaping @Sendable () async throws -> T) throws -> T {
        let box = ResultBox<T>()
        let task = Task {
            do { box.set(.success(try await work())) } catch { box.set(.failure(error)) }
        }
        var cancelled = false
        while box.result == nil {
            if interruption.requested && !cancelled {
                task.cancel()
                cancelled = true
            }
            progress()
            Thread.sleep(forTimeInterval: 0.2)
        }
        switch box.result! {
        case .success(let value):
            return value
        case .failure(let error) where error is CancellationError || cancelled:
            throw CommandError("stopped (\(interruption.signalName ?? "cancelled")); what was downloaded is kept in "
                               + "the cache's .incomplete files: run the same command to resume")
        case .failure(let error as HubError):
            throw CommandError("\(error)")
        case .failure(let error):
            throw error
        }
    }
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<T, any Error>?
    func set(_ result: Result<T, any Error>) { lock.withLock { value = result } }
    var result: Result<T, any Error>? { lock.withLock { value } }
}

/// ProgressLine in size units (MB, or kB for a download under 10 MB), fed from HubDownloadProgress: done/total, rate and ETA, and the files under way.
final class ByteProgress {
    private let unit: Int64
    private let line: ProgressLine

    init(total: Int64, toStandardError: Bool = false) {
        unit = total >= 10_000_000 ? 1_000_000 : 1_000
        line = ProgressLine(total: Int((total + unit - 1) / unit), label: "download", unit: unit == 1_000_000 ? "MB" : "kB",
                            toStandardError: toStandardError)
    }

    func update(_ progress: HubDownloadProgress) {
        let active = progress.active
        line.update(Int(progress.done / unit), detail: active.isEmpty ? "" : active.joined(separator: ", "))
    }

    /// Draws the full line once the download is done (the last poll may have come before the last bytes).
    func complete() { line.update(Int.max) }

    /// Ends the line where it stands (a stopped or failed download).
    func finish() { line.finish() }
}

/// Implicit downloads (a model named by repo id, not in the cache, network allowed: ModelLocation) drawn as
/// `inkwell download` draws them, on stderr, so that a command's own output on stdout stays as it is.
final class CommandLineDownloadObserver: ModelDownloadObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var line: ByteProgress?

    func started(_ id: HubRepoID, plan: HubDownloader.Plan, settings: HubSettings) {
        Self.write("\(id) is not in the Hugging Face cache: downloading it (HF_HUB_OFFLINE=1 turns this off)\n"
                   + Download.summary(plan, settings: settings))
        lock.withLock { line = plan.bytesToFetch > 0 ? ByteProgress(total: plan.bytesToFetch, toStandardError: true) : nil }
    }

    func progress(_ progress: HubDownloadProgress) { lock.withLock { line?.update(progress) } }

    func finished(_ id: HubRepoID, snapshot: URL?, error: Error?) {
        lock.withLock {
            if snapshot != nil { line?.complete() } else { line?.finish() }
            line = nil
        }
        if let snapshot { Self.write("\(id) is in \(snapshot.path)") }
    }

    private static func write(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }
}
