// The page's own files, Assets/: the HTML shell, the style sheet and the scripts, all served by the
// dashboard itself (no CDN, no fonts, no request elsewhere; the content security policy enforces it).
// They ship as this target's resources (Inkwell_Dashboard.resources beside the binary) and are served
// as they are: the scripts render every view from the JSON routes, so nothing is filled in at run time.
import Foundation
import Hummingbird

/// One file of Assets/, read once.
struct WebAsset: Sendable {
    let route: String
    let contentType: String
    let etag: String
    let body: ByteBuffer

    /// No-cache with an ETag, like the runs' files: a reload revalidates, and an unchanged file is a 304.
    func response(to request: Request) -> Response {
        var headers = HTTPFields()
        headers[.eTag] = etag
        headers[.cacheControl] = "no-cache"
        headers[.contentType] = contentType
        if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: headers) }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: body))
    }
}

enum WebAssets {
    private static let types = ["html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
                        "js": "text/javascript; charset=utf-8"]

    /// index.html is the page at /, every other file is /assets/NAME. Read when the routes are made, so a
    /// binary without its resources stops at start rather than at the first page load.
    static let all: [WebAsset] = {
        guard let folder = Bundle.module.url(forResource: "Assets", withExtension: nil) else {
            fatalError("no Assets folder in the dashboard's resources at \(Bundle.module.bundlePath)")
        }
        do {
            return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
                .sorted { $0.lastPathComponent < $1.lastPathComponent }
                .map(load)
        } catch {
            fatalError("cannot read the dashboard's page files in \(folder.path): \(error)")
        }
    }()

    private static func load(_ url: URL) throws -> WebAsset {
        let name = url.lastPathComponent
        guard let type = types[url.pathExtension.lowercased()] else {
            fatalError("Assets/\(name) has no content type: add its extension to WebAssets.types")
        }
        return WebAsset(route: name == "index.html" ? "/" : "/assets/" + name, contentType: type,
                        etag: DashboardRoutes.etag(try FileManager.default.attributesOfItem(atPath: url.path)),
                        body: ByteBuffer(bytes: try Data(contentsOf: url)))
    }
}
