// Models named by their Hugging Face repo id (`org/name`, optionally `@revision`), found in the local cache
// exactly where huggingface_hub puts them, so that what diffusers or transformers downloaded is used as is and
// nothing touches the network:
//
//   $HF_HUB_CACHE (else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub)
//     models--org--name/refs/<revision>          the commit a branch or tag points at
//     models--org--name/snapshots/<commit>/…     the files (links into blobs/)
import Foundation

public struct HubRepoID: Equatable, Sendable, CustomStringConvertible {
    public var repo: String
    /// A branch, tag or 40-hex commit; nil means `main`.
    public var revision: String?

    /// `org/name` or `org/name@revision`, as the Hub spells ids: two parts of letters, digits, `-`, `_`, `.`.
    public init?(_ text: String) {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        let repo = String(parts[0])
        let names = repo.split(separator: "/", omittingEmptySubsequences: false)
        func valid(_ s: Substring) -> Bool {
            !s.isEmpty && s.count <= 96 && s.first != "." && s.first != "-"
                && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
                && !s.contains("--") && !s.contains("..")
        }
        guard names.count == 2, names.allSatisfy(valid) else { return nil }
        if parts.count == 2 {
            // Branches may hold slashes (`refs/pr/1`); none of their parts may climb out of refs/.
            let steps = parts[1].split(separator: "/", omittingEmptySubsequences: false)
            guard steps.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else { return nil }
            revision = String(parts[1])
        }
        self.repo = repo
    }

    public var description: String { repo + (revision.map { "@\($0)" } ?? "") }
}

public struct HubCacheError: Error, CustomStringConvertible, Equatable {
    /// The path or repo id the message is about.
    public let subject: String
    public let message: String
    public var description: String { "\(subject): \(message)" }
}

public enum HubCache {
    /// The cache folder huggingface_hub uses with this environment.
    /// huggingface_hub's constants: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else HF_HOME/hub, else
    /// XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (a leading ~ is the environment's HOME).
    public static func directory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let hub = environment["HF_HUB_CACHE"] ?? environment["HUGGINGFACE_HUB_CACHE"] {
            return URL(fileURLWithPath: expandingHome(hub, environment: environment))
        }
        return home(environment: environment).appendingPathComponent("hub")
    }

    /// huggingface_hub's HF_HOME: HF_HOME, else XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. The token
    /// file and the hub cache live under it.
    public static func home(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        let userHome = environment["HOME"] ?? NSHomeDirectory()
        let hfHome = environment["HF_HOME"].map { expandingHome($0, environment: environment) }
            ?? ((environment["XDG_CACHE_HOME"] ?? (userHome as NSString).appendingPathComponent(".cache")) as NSString)
                .appendingPathComponent("huggingface")
        return URL(fileURLWithPath: hfHome)
    }

    /// `~` and `~/…` in a setting, with the environment's HOME (as Python's os.path.expanduser).
    static func expandingHome(_ text: String, environment: [String: String]) -> String {
        let home = environment["HOME"] ?? NSHomeDirectory()
        return text == "~" ? home : text.hasPrefix("~/") ? (home as NSString).appendingPathComponent(String(text.dropFirst(2))) : text
    }

    /// `models--org--name`: the repo's folder in the cache (huggingface_hub's repo_folder_name).
    public static func repoFolder(_ repo: String, cache: URL) -> URL {
        cache.appendingPathComponent("models--" + repo.replacingOccurrences(of: "/", with: "--"))
    }

    /// The snapshot folder of `id` in the cache; the error says where it looked and how to get the model.
    public static func snapshot(_ id: HubRepoID, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> URL {
        let cache = directory(environment: environment)
        let repoFolder = repoFolder(id.repo, cache: cache)
        let revision = id.revision ?? "main"
        let fm = FileManager.default
        func missing(_ what: String) -> HubCacheError {
            HubCacheError(subject: id.description, message: "\(what) the Hugging Face cache \(cache.path); download it first "
                + "(`\(downloadCommand(id))`), "
                + "or set HF_HUB_CACHE / HF_HOME to the cache that holds it")
        }
        guard fm.fileExists(atPath: repoFolder.path) else { throw missing("not in") }
        // A commit is its own snapshot; a branch or tag is read from refs/.
        var commit = revision
        if !Self.isCommit(revision) {
            let ref = repoFolder.appendingPathComponent("refs").appendingPathComponent(revision)
            guard let text = try? String(contentsOf: ref, encoding: .utf8) else { throw missing("no revision '\(revision)' in") }
            commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let snapshot = repoFolder.appendingPathComponent("snapshots").appendingPathComponent(commit)
        guard Self.isCommit(commit), fm.fileExists(atPath: snapshot.path) else {
            throw missing("revision '\(revision)' (commit \(commit)) has no snapshot in")
        }
        return snapshot
    }

    /// The command that fetches `id` into the cache, for messages.
    public static func downloadCommand(_ id: HubRepoID) -> String {
        "inkwell download \(id.repo)" + (id.revision.map { " --revision \($0)" } ?? "")
    }

    static func isCommit(_ text: String) -> Bool {
        text.count == 40 && text.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }
}
