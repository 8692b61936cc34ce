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
    /// SwiftPM's resource bundle of this target, beside the binary. Found here rather than through
    /// `Bundle.module`, whose accessor crashes when a moved binary left the folder behind.
    static let bundleName = "Inkwell_Dashboard.resources"

    /// index.html is the page at /, every other file is /assets/NAME. Read when the server is made, so a
    /// binary without its resources stops at start, with what to do, rather than at the first page load.
    static func load(besideBinary binary: URL = Bundle.main.bundleURL) throws -> [WebAsset] {
        let folder = binary.appendingPathComponent(bundleName).appendingPathComponent("Assets")
        let files: [URL]
        do {
            files = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
                .sorted { $0.lastPathComponent < $1.lastPathComponent }
        } catch {
            throw DashboardError("the dashboard's page files are missing: no \(folder.path). \(bundleName) is built "
                + "beside the inkwell binary; copy that folder along when you move inkwell")
        }
        return try files.map(asset)
    }

    private static func asset(_ url: URL) throws -> WebAsset {
        let name = url.lastPathComponent
        guard let type = types[url.pathExtension.lowercased()] else {
            throw DashboardError("\(url.path): the dashboard serves only .html, .css and .js page files; remove it")
        }
        do {
            return WebAsset(route: name == "index.html" ? "/" : "/assets/" + name, contentType: type,
                            etag: DashboardRoutes.etag(try FileManager.default.attributesOfItem(atPath: url.path)),
                            body: ByteBuffer(bytes: try Data(contentsOf: url)))
        } catch {
            throw DashboardError("\(url.path): cannot read the dashboard's page file: \(error.localizedDescription)")
        }
    }
}
