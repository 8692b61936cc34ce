// Where the Hub is and who is asking, from the same environment variables huggingface_hub reads
// (its constants.py and utils/_auth.py): HF_ENDPOINT, HF_TOKEN (or HUGGING_FACE_HUB_TOKEN), the token file
// HF_TOKEN_PATH (default $HF_HOME/token, which `hf auth login` writes), HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE),
// and the cache folder.
import Foundation

public struct HubSettings: Sendable {
    /// The Hub's address without a trailing slash (`https://huggingface.co`, or a mirror).
    public var endpoint: String
    /// The access token sent as `Authorization: Bearer …`, if any.
    public var token: String?
    /// Where the token came from, for messages ("--token", "HF_TOKEN", the file's path).
    public var tokenSource: String?
    /// HF_HUB_OFFLINE: no request is ever made.
    public var offline: Bool
    /// The Hugging Face cache (models--org--name/ folders).
    public var cache: URL
    /// Which requests go through which proxy.
    public var proxies: HubProxies

    public init(endpoint: String = "https://huggingface.co", token: String? = nil, tokenSource: String? = nil,
                offline: Bool = false, cache: URL, proxies: HubProxies = HubProxies()) {
        self.endpoint = endpoint
        self.proxies = proxies
        self.token = token
        self.tokenSource = tokenSource
        self.offline = offline
        self.cache = cache
    }

    /// The settings this environment gives; `token` and `cache` given here (from flags) win over it.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, token: String? = nil, cache: URL? = nil) {
        func clean(_ text: String?) -> String? {
            // As huggingface_hub's _clean_token: newlines dropped, spaces trimmed, empty means none.
            let cleaned = text?.replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\n", with: "")
                .trimmingCharacters(in: .whitespaces)
            return cleaned?.isEmpty == false ? cleaned : nil
        }
        var source: String?
        var chosen = clean(token)
        if chosen != nil { source = "--token" }
        if chosen == nil, let fromEnvironment = clean(environment["HF_TOKEN"] ?? environment["HUGGING_FACE_HUB_TOKEN"]) {
            chosen = fromEnvironment
            source = environment["HF_TOKEN"] != nil ? "HF_TOKEN" : "HUGGING_FACE_HUB_TOKEN"
        }
        if chosen == nil {
            let file = Self.tokenFile(environment: environment)
            if let text = try? String(contentsOf: file, encoding: .utf8), let fromFile = clean(text) {
                chosen = fromFile
                source = file.path
            }
        }
        let endpoint = (environment["HF_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://huggingface.co")
        self.init(endpoint: endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint,
                  token: chosen, tokenSource: source,
                  offline: Self.isTrue(environment["HF_HUB_OFFLINE"] ?? environment["TRANSFORMERS_OFFLINE"]),
                  cache: cache ?? HubCache.directory(environment: environment),
                  proxies: HubProxies(environment: environment))
    }

    /// HF_TOKEN_PATH, else $HF_HOME/token.
    public static func tokenFile(environment: [String: String]) -> URL {
        if let path = environment["HF_TOKEN_PATH"] {
            return URL(fileURLWithPath: HubCache.expandingHome(path, environment: environment))
        }
        return HubCache.home(environment: environment).appendingPathComponent("token")
    }

    /// huggingface_hub's _is_true: 1, ON, YES, TRUE in any case.
    static func isTrue(_ value: String?) -> Bool {
        guard let value else { return false }
        return ["1", "ON", "YES", "TRUE"].contains(value.uppercased())
    }

    /// The model's page on the Hub, where a gated model's licence is accepted.
    public func page(_ repo: String) -> String { "\(endpoint)/\(repo)" }
}
