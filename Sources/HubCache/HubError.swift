// What can go wrong talking to the Hub, each case with the message a user needs: what happened and what to do.
// The cases follow huggingface_hub's reading of the Hub's answers (utils/_http.py hf_raise_for_status: the
// X-Error-Code header, RepoNotFound / RevisionNotFound / EntryNotFound / GatedRepo, 401 and 403).
import Foundation

public enum HubError: Error, CustomStringConvertible, Equatable {
    /// HF_HUB_OFFLINE is set; nothing was sent.
    case offline(repo: String)
    /// A gated repo and no token, or a token without access (`denied`: the Hub answered 403).
    case gated(repo: String, page: String, denied: Bool, tokenSource: String?)
    /// The Hub does not show this repo: it does not exist, or it is private and the token (if any) cannot see it.
    case repoNotFound(repo: String, endpoint: String, tokenSource: String?)
    /// The Hub refused the token itself.
    case invalidToken(tokenSource: String)
    case revisionNotFound(repo: String, revision: String)
    case fileNotFound(repo: String, revision: String, path: String)
    /// The address did not answer (DNS, refused, timed out) before anything was received.
    case unreachable(url: String, reason: String)
    /// The connection broke while a file was coming in; `kept` bytes are in `incomplete`, which the next run resumes.
    case connectionLost(path: String, kept: Int64, incomplete: String, reason: String)
    /// The bytes received do not hash to the file's ETag (its SHA-256, or its git blob id).
    case checksumMismatch(path: String, expected: String, actual: String)
    /// An answer that is not the Hub's (missing X-Repo-Commit or ETag, a JSON body that is not model info).
    case notAHub(url: String, missing: String)
    case http(url: String, status: Int, message: String)
    /// A proxy variable that cannot be used (HubProxies says which and why).
    case badProxy(String)
    /// No file of the repo matched what was asked for.
    case nothingSelected(repo: String, include: [String], files: Int)

    public var description: String {
        switch self {
        case .offline(let repo):
            return "\(repo): HF_HUB_OFFLINE is set, so nothing is downloaded; unset it (or set HF_HUB_OFFLINE=0) to "
                + "download, or name a model that is already in the cache"
        case .gated(let repo, let page, let denied, let tokenSource):
            let how = "accept its licence on \(page) (logged in as the token's owner), then give a read token from "
                + "https://huggingface.co/settings/tokens with --token, HF_TOKEN or `hf auth login`"
            if denied {
                return "\(repo) is a gated model and the token from \(tokenSource ?? "--token") has no access yet: \(how)"
            }
            return "\(repo) is a gated model and no token was given: \(how)"
        case .repoNotFound(let repo, let endpoint, let tokenSource):
            return "\(repo): no such model on \(endpoint)"
                + (tokenSource.map { " that the token from \($0) can see; check the id's spelling (org/name)" }
                   ?? "; check the id's spelling (org/name), and if it is private, give a token with --token or HF_TOKEN")
        case .invalidToken(let source):
            return "the Hub refused the token from \(source) (invalid or expired): make a new one at "
                + "https://huggingface.co/settings/tokens"
        case .revisionNotFound(let repo, let revision):
            return "\(repo) has no revision '\(revision)' (a branch, tag or commit); check --revision"
        case .fileNotFound(let repo, let revision, let path):
            return "\(repo)@\(revision) has no file \(path)"
        case .unreachable(let url, let reason):
            return "cannot reach \(url): \(reason); check the network (or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 to use "
                + "only what is already in the cache"
        case .connectionLost(let path, let kept, let incomplete, let reason):
            return "the connection was lost while downloading \(path) (\(reason)); \(kept) bytes are kept in "
                + "\(incomplete): run the same command again to resume"
        case .checksumMismatch(let path, let expected, let actual):
            return "\(path): the downloaded bytes hash to \(actual), not to the Hub's \(expected); the file was "
                + "discarded: run the same command again"
        case .notAHub(let url, let missing):
            return "\(url) answered without \(missing), so it is not a Hugging Face Hub; check HF_ENDPOINT"
        case .http(let url, let status, let message):
            return "\(url): HTTP \(status)\(message.isEmpty ? "" : ": \(message)")"
        case .badProxy(let problem):
            return problem
        case .nothingSelected(let repo, let include, let files):
            return include.isEmpty
                ? "\(repo) has \(files) files but none that Inkwell uses (safetensors weights, configs, tokenizer "
                    + "files); name the files with --include GLOB"
                : "no file of \(repo) (\(files) files) matches --include \(include.joined(separator: " --include "))"
        }
    }
}
