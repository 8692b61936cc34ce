// The HTTP surface. Read-only by construction: only GET routes exist (HEAD is derived from them)
// and any other method is answered 405 before routing. Files come only through `RunsRoot.file`,
// which refuses anything outside runs/. JSON is never cached by the browser (it is polled); files
// carry an ETag so an unchanged sample is not sent twice.
import Foundation
import Hummingbird

public struct DashboardRoutes: Sendable {
    public let data: DashboardData
    public let access: DashboardAccess
    let assets: [WebAsset]

    /// Reads the page's own files now: a binary without them is an error here, not at the first page load.
    public init(data: DashboardData, access: DashboardAccess = .local) throws {
        self.data = data
        self.access = access
        assets = try WebAssets.load()
    }

    /// Adds the dashboard's middleware and routes. Middleware a caller adds before this call wraps
    /// the routes too (the tests use that to change runs/ while a page is open). The token check wraps
    /// every route, the page's own files included.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.add(middleware: ReadOnlyMiddleware<Context>())
        router.add(middleware: AccessTokenMiddleware<Context>(access: access))
        for asset in assets {
            router.get(RouterPath(asset.route)) { request, _ in asset.response(to: request) }
        }

        router.get("/api/index") { _, _ in try Self.json(await data.index()) }
        router.get("/api/run") { request, _ in
            try Self.json(try await Self.found { try await data.run(try Self.query(request, "id")) })
        }
        router.get("/api/log") { request, _ in
            let sinceText = request.uri.queryParameters["since"].map(String.init) ?? "-1"
            guard let since = Int(sinceText) else { throw HTTPError(.badRequest, message: "since must be a step number, got '\(sinceText)'") }
            return try Self.json(try await Self.found { try await data.log(try Self.query(request, "id"), since: since) })
        }
        router.get("/api/compare") { request, _ in
            let ids = request.uri.queryParameters[values: "id"].map(String.init)
            guard !ids.isEmpty else { throw HTTPError(.badRequest, message: "name runs to compare with id=RUN (repeatable)") }
            var pick: SamplePick?
            if let text = request.uri.queryParameters["step"].map(String.init) {
                guard let picked = SamplePick(text) else {
                    throw HTTPError(.badRequest, message: "step must be a step number, latest or best, got '\(text)'")
                }
                pick = picked
            }
            return try Self.json(try await Self.found { try await data.compare(ids, pick: pick) })
        }
        router.get("/api/pipeline") { request, _ in
            try Self.json(try await Self.found { try await data.pipeline(try Self.query(request, "id")) })
        }

        router.get("/files/**") { request, context in try await Self.file(request, context: context, root: data.root) }
        router.get("/thumb/**") { request, _ in try await Self.thumbnail(request, data: data) }
    }

    // MARK: Files

    static func relativePath(_ request: Request, after prefix: String) -> String {
        String(request.uri.path.dropFirst(prefix.count))
    }

    static func resolve(_ request: Request, after prefix: String, root: RunsRoot) throws -> URL {
        do {
            return try root.file(encoded: relativePath(request, after: prefix))
        } catch {
            throw HTTPError(HTTPResponse.Status(code: error.status), message: error.description)
        }
    }

    static func file(_ request: Request, context: some RequestContext, root: RunsRoot) async throws -> Response {
        let url = try resolve(request, after: "/files/", root: root)
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        let tag = etag(attributes)
        var headers = HTTPFields()
        headers[.eTag] = tag
        headers[.cacheControl] = "no-cache"
        headers[.contentType] = ContentTypes.type(of: url.lastPathComponent)
        if ContentTypes.isDownload(url.lastPathComponent) {
            headers[.contentDisposition] = "attachment; filename=\"\(url.lastPathComponent.filter { $0 != "\"" && $0.isASCII })\""
        }
        if request.headers[.ifNoneMatch] == tag { return Response(status: .notModified, headers: headers) }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        headers[.contentLength] = String(size)
        let body = try await FileIO().loadFile(path: url.path, context: context)
        return Response(status: .ok, headers: headers, body: body)
    }

    static func thumbnail(_ request: Request, data: DashboardData) async throws -> Response {
        let url = try resolve(request, after: "/thumb/", root: data.root)
        guard ContentTypes.isImage(url.lastPathComponent) else {
            throw HTTPError(.unsupportedMediaType, message: "thumbnails are made of PNG, JPEG or WebP images only")
        }
        let widthText = request.uri.queryParameters["w"].map(String.init) ?? "256"
        guard let width = Int(widthText), width > 0 else { throw HTTPError(.badRequest, message: "w must be a positive width, got '\(widthText)'") }
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        let tag = "\"\(Thumbnails.width(for: width))-" + etag(attributes).dropFirst()
        var headers = HTTPFields()
        headers[.eTag] = tag
        headers[.cacheControl] = "no-cache"
        headers[.contentType] = "image/png"
        if request.headers[.ifNoneMatch] == tag { return Response(status: .notModified, headers: headers) }
        let png: [UInt8]
        do {
            png = try await data.thumbnails.png(for: url, requested: width)
        } catch {
            throw HTTPError(.unprocessableContent, message: "cannot make a thumbnail of \(url.lastPathComponent): \(error)")
        }
        headers[.contentLength] = String(png.count)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: png)))
    }

    /// A strong validator from the file's size and modification time.
    static func etag(_ attributes: [FileAttributeKey: Any]) -> String {
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\"\(size)-\(Int64(modified * 1_000_000))\""
    }

    // MARK: Helpers

    static func query(_ request: Request, _ name: String) throws -> String {
        guard let value = request.uri.queryParameters[Substring(name)], !value.isEmpty else {
            throw HTTPError(.badRequest, message: "missing query parameter '\(name)'")
        }
        return String(value)
    }

    /// Runs `body`, turning "no such run/pipeline" into a 404.
    static func found<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DashboardError {
            throw HTTPError(.notFound, message: error.description)
        }
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = try encoder.encode(value)
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Refuses every method but GET and HEAD, and sets the headers that keep the page self-contained:
/// the content security policy allows no request outside the dashboard.
struct ReadOnlyMiddleware<Context: RequestContext>: RouterMiddleware {
    static var policy: String {
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
            + "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'; form-action 'none'"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        if request.method == .get || request.method == .head {
            do {
                response = try await next(request, context)
            } catch let error as any HTTPResponseError {
                response = try error.response(from: request, context: context)
            }
        } else {
            var headers = HTTPFields()
            headers[.allow] = "GET, HEAD"
            response = try HTTPError(.methodNotAllowed, headers: headers, message: "the dashboard is read-only")
                .response(from: request, context: context)
        }
        response.headers[.contentSecurityPolicy] = Self.policy
        response.headers[.xContentTypeOptions] = "nosniff"
        if let referrer = HTTPFields.Element.Name("Referrer-Policy") { response.headers[referrer] = "no-referrer" }
        return response
    }
}

/// Content types by file extension.
enum ContentTypes {
    static func type(of name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "webp": return "image/webp"
        case "svg": return "image/svg+xml"
        case "gif": return "image/gif"
        case "html", "htm": return "text/html; charset=utf-8"
        case "json": return "application/json; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        // Shown in the browser rather than downloaded.
        case "csv", "toml", "md", "txt", "log", "yaml", "yml": return "text/plain; charset=utf-8"
        default: return "application/octet-stream"
        }
    }

    static func isImage(_ name: String) -> Bool {
        ["png", "jpg", "jpeg", "webp"].contains((name as NSString).pathExtension.lowercased())
    }

    static func isDownload(_ name: String) -> Bool { type(of: name) == "application/octet-stream" }
}
