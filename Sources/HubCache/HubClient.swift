// The Hub's HTTP API as huggingface_hub uses it (hf_api.py repo_info, file_download.py get_hf_file_metadata and
// http_get, utils/_http.py), over AsyncHTTPClient:
//   GET  {endpoint}/api/models/{repo}/revision/{rev}   the commit (`sha`) and file list (`siblings`)
//   HEAD {endpoint}/{repo}/resolve/{rev}/{path}        with Accept-Encoding: identity; redirects followed while
//        they stay on the same origin (a renamed repo), not to a CDN: the 302's own headers carry the file's
//        X-Repo-Commit, ETag / X-Linked-Etag (an LFS file's SHA-256) and X-Linked-Size, and its Location is
//        where the bytes are
//   GET  that location, with `Range: bytes=N-` to resume; the token is not sent to another origin.
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

public final class HubClient: Sendable {
    public let settings: HubSettings
    /// By proxy (nil: direct).
    private let clients: [HubProxy?: HTTPClient]

    public struct RepoInfo: Sendable, Equatable {
        /// The commit the asked revision points at.
        public let commit: String
        public let files: [String]
        public let gated: Bool
    }

    public struct FileMetadata: Sendable, Equatable {
        public let path: String
        public let commit: String
        /// The blob's name in the cache: an LFS file's SHA-256, else the file's git blob id.
        public let etag: String
        public let size: Int64?
        /// Where the bytes are (the CDN address of an LFS file, else the resolve address).
        public let location: String
    }

    /// A body that stopped coming before its end; the downloader resumes from what was written.
    struct Interrupted: Error { let reason: String }

    static let userAgent = "inkwell/0.1; hf_hub-compatible"

    public init(settings: HubSettings) {
        self.settings = settings
        // One client per way out (direct, and each proxy the environment names): AsyncHTTPClient's proxy is a
        // setting of the client, and the Hub and its CDN may be reached through different ones (NO_PROXY).
        var clients: [HubProxy?: HTTPClient] = [:]
        for proxy in [nil] + settings.proxies.proxies.values.map(Optional.some) where clients[proxy] == nil {
            clients[proxy] = Self.makeClient(proxy: proxy)
        }
        self.clients = clients
    }

    /// Redirects are followed here, by the Hub's rules, not by the client; a stalled read fails after a minute.
    private static func makeClient(proxy: HubProxy?) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(10), read: .seconds(60)),
            decompression: .disabled)
        switch proxy?.kind {
        case .http?:
            let authorization = proxy!.username.map { HTTPClient.Authorization.basic(username: $0, password: proxy!.password ?? "") }
            configuration.proxy = .server(host: proxy!.host, port: proxy!.port, authorization: authorization)
        case .socks5?:
            configuration.proxy = .socksServer(host: proxy!.host, port: proxy!.port)
        case nil:
            break
        }
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// The connections close when the client goes (AsyncHTTPClient requires a shutdown before its deinit; this
    /// one does not wait for it).
    deinit { for client in clients.values { client.shutdown { _ in } } }

    // MARK: - Endpoints

    public func repoInfo(_ repo: String, revision: String) async throws -> RepoInfo {
        let url = "\(settings.endpoint)/api/models/\(repo)/revision/\(Self.encoded(revision, slash: true))"
        let response = try await send(url, method: .GET, authorized: true, timeout: .seconds(60))
        try check(response, url: url, repo: repo, revision: revision, path: nil)
        let body = try await response.body.collect(upTo: 64 << 20)
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
              let commit = object["sha"] as? String, let siblings = object["siblings"] as? [[String: Any]] else {
            throw HubError.notAHub(url: url, missing: "model info (sha, siblings)")
        }
        // `gated` is false, "auto" or "manual".
        let gated = (object["gated"] as? String).map { !$0.isEmpty } ?? (object["gated"] as? Bool ?? false)
        return RepoInfo(commit: commit, files: siblings.compactMap { $0["rfilename"] as? String }, gated: gated)
    }

    public func metadata(repo: String, revision: String, path: String) async throws -> FileMetadata {
        var url = resolveURL(repo: repo, revision: revision, path: path)
        for _ in 0..<10 {
            let response = try await send(url, method: .HEAD, authorized: true, timeout: .seconds(60))
            let target = response.headers.first(name: "Location").map { Self.absolute($0, relativeTo: url) }
            if (300..<400).contains(Int(response.status.code)), let target {
                if Self.origin(target) == Self.origin(url) {
                    url = target
                    continue
                }
            } else {
                try check(response, url: url, repo: repo, revision: revision, path: path)
            }
            let headers = response.headers
            guard let commit = headers.first(name: "X-Repo-Commit") else { throw HubError.notAHub(url: url, missing: "X-Repo-Commit") }
            guard let etag = Self.normalizedETag(headers.first(name: "X-Linked-Etag") ?? headers.first(name: "ETag")) else {
                throw HubError.notAHub(url: url, missing: "ETag")
            }
            let size = headers.first(name: "X-Linked-Size")
                ?? (target == nil ? headers.first(name: "Content-Length") : nil)
            return FileMetadata(path: path, commit: commit, etag: etag, size: size.flatMap { Int64($0) }, location: target ?? url)
        }
        throw HubError.http(url: url, status: 310, message: "too many redirects")
    }

    /// Appends the bytes of `url` to `file` from its current length (a `Range` request when it has some), calling
    /// `received` with each chunk's size; returns the file's final length. A server that ignores the range gets the
    /// file rewritten from the start, as huggingface_hub's http_get does.
    func fetch(_ url: String, repo: String, path: String, into file: URL, received: @Sendable (Int) -> Void) async throws -> Int64 {
        var url = url
        let hubOrigin = Self.origin(settings.endpoint)
        for _ in 0..<10 {
            let handle = try FileHandle(forWritingTo: file)
            defer { try? handle.close() }
            var offset = Int64(try handle.seekToEnd())
            let response: HTTPClientResponse
            do {
                response = try await send(url, method: .GET, authorized: Self.origin(url) == hubOrigin, timeout: .hours(48),
                                          range: offset > 0 ? offset : nil)
            } catch HubError.unreachable(_, let reason) {
                // A pooled connection the server had closed, a reset: retried like a drop mid-body (http_get
                // retries connection errors the same way).
                throw Interrupted(reason: reason)
            }
            let status = Int(response.status.code)
            if (300..<400).contains(status), let location = response.headers.first(name: "Location") {
                url = Self.absolute(location, relativeTo: url)
                continue
            }
            try check(response, url: url, repo: repo, revision: nil, path: path)
            if offset > 0 && status == 200 {
                try handle.truncate(atOffset: 0)
                offset = 0
            }
            do {
                for try await buffer in response.body {
                    try handle.write(contentsOf: Data(buffer.readableBytesView))
                    offset += Int64(buffer.readableBytes)
                    received(buffer.readableBytes)
                }
            } catch {
                if Task.isCancelled { throw CancellationError() }
                throw Interrupted(reason: Self.reason(error))
            }
            return offset
        }
        throw HubError.http(url: url, status: 310, message: "too many redirects")
    }

    // MARK: - Requests and answers

    func resolveURL(repo: String, revision: String, path: String) -> String {
        "\(settings.endpoint)/\(repo)/resolve/\(Self.encoded(revision, slash: true))/\(Self.encoded(path, slash: false))"
    }

    private func send(_ url: String, method: HTTPMethod, authorized: Bool, timeout: TimeAmount, range: Int64? = nil) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        // The real size of each file, not a compressed one (huggingface_hub sends the same).
        request.headers.add(name: "Accept-Encoding", value: "identity")
        if authorized, let token = settings.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let range { request.headers.add(name: "Range", value: "bytes=\(range)-") }
        let proxy = settings.proxies.proxy(for: url)
        // init made one client per proxy the settings name, and proxy(for:) only answers with those.
        guard let client = clients[proxy] else {
            throw HubError.unreachable(url: url, reason: "no HTTP client was set up for the proxy \(proxy.map { "\($0)" } ?? "(none)")")
        }
        do {
            return try await client.execute(request, timeout: timeout)
        } catch {
            if Task.isCancelled || error is CancellationError { throw CancellationError() }
            throw HubError.unreachable(url: url, reason: Self.reason(error) + (proxy.map { " (through the proxy \($0))" } ?? ""))
        }
    }

    /// Turns an error answer into the HubError huggingface_hub would raise for it.
    private func check(_ response: HTTPClientResponse, url: String, repo: String, revision: String?, path: String?) throws {
        let status = Int(response.status.code)
        guard status >= 400 else { return }
        let code = response.headers.first(name: "X-Error-Code")
        let message = response.headers.first(name: "X-Error-Message") ?? response.status.reasonPhrase
        switch (code, status) {
        case ("GatedRepo", _):
            throw HubError.gated(repo: repo, page: settings.page(repo), denied: status == 403 && settings.token != nil,
                                 tokenSource: settings.tokenSource)
        case ("RevisionNotFound", _):
            throw HubError.revisionNotFound(repo: repo, revision: revision ?? "?")
        case ("EntryNotFound", _):
            throw HubError.fileNotFound(repo: repo, revision: revision ?? "?", path: path ?? "?")
        case (_, 401) where message == "Invalid credentials in Authorization header" && settings.token != nil:
            throw HubError.invalidToken(tokenSource: settings.tokenSource ?? "--token")
        case ("RepoNotFound", _), (_, 401):
            throw HubError.repoNotFound(repo: repo, endpoint: settings.endpoint, tokenSource: settings.tokenSource)
        case (nil, 404) where path == nil:
            throw HubError.repoNotFound(repo: repo, endpoint: settings.endpoint, tokenSource: settings.tokenSource)
        default:
            throw HubError.http(url: url, status: status, message: message)
        }
    }

    /// `W/"abc"` and `"abc"` to `abc` (huggingface_hub's _normalize_etag).
    static func normalizedETag(_ value: String?) -> String? {
        guard var value else { return nil }
        if value.hasPrefix("W/") { value.removeFirst(2) }
        value = value.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        return value.isEmpty ? nil : value
    }

    /// A Location header as an absolute address (urljoin).
    static func absolute(_ location: String, relativeTo base: String) -> String {
        URL(string: location, relativeTo: URL(string: base))?.absoluteString ?? location
    }

    /// Scheme, host and port: where a token may go (huggingface_hub's _url_origin).
    static func origin(_ url: String) -> String {
        guard let components = URLComponents(string: url) else { return url }
        let scheme = components.scheme?.lowercased() ?? ""
        let port = components.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : 0)
        return "\(scheme)://\(components.host?.lowercased() ?? ""):\(port)"
    }

    static func encoded(_ text: String, slash: Bool) -> String {
        var allowed = CharacterSet.urlPathAllowed
        if slash { allowed.remove("/") }
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// A transport error in words (AsyncHTTPClient's and NIO's descriptions are terse type names).
    static func reason(_ error: Error) -> String {
        if let client = error as? HTTPClientError {
            switch client {
            case .connectTimeout: return "connection timed out"
            case .readTimeout: return "no data for 60 s"
            case .remoteConnectionClosed: return "the server closed the connection"
            default: return "\(client)"
            }
        }
        return "\(error)"
    }
}
