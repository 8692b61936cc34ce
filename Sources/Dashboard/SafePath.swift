// The one gate between a URL and the disk: a request names a file relative to runs/, and only a
// regular file whose real path (symlinks resolved) lies inside the real runs/ folder gets through.
// Everything is checked on the decoded path, and a path that still holds a `%` after one decoding is
// refused, so double-encoded dots and slashes cannot sneak past.
import Foundation

/// Why a requested path was refused; each maps to a 4xx status.
public enum PathRejection: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case badEncoding(String)
    case forbiddenComponent(String)
    case outsideRoot(String)
    case notFound(String)

    public var description: String {
        switch self {
        case .empty: return "empty path"
        case .badEncoding(let p): return "malformed percent-encoding in '\(p)'"
        case .forbiddenComponent(let c): return "path component '\(c)' is not allowed"
        case .outsideRoot(let p): return "'\(p)' leads outside the runs folder"
        case .notFound(let p): return "no file '\(p)' in the runs folder"
        }
    }

    /// 404 for a well-formed path with nothing behind it, 403 for one that escapes, 400 otherwise.
    public var status: Int {
        switch self {
        case .notFound: return 404
        case .outsideRoot: return 403
        case .empty, .badEncoding, .forbiddenComponent: return 400
        }
    }
}

/// The runs folder, by its real path (a `runs` that is itself a symlink is resolved once, here).
public struct RunsRoot: Sendable {
    public let url: URL
    public var path: String { url.path }

    public init(_ url: URL) throws {
        guard let real = Self.realPath(url.path) else {
            throw DashboardError("runs folder \(url.path) does not exist")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: real, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DashboardError("\(url.path) is not a folder")
        }
        self.url = URL(fileURLWithPath: real, isDirectory: true)
    }

    /// The real path of an existing file or folder (every symlink resolved), or nil when absent.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Checks a decoded relative path's shape: no empty, `.`, `..` or hidden components, no
    /// backslashes, control characters or leftover `%`. Returns its components.
    static func components(of relative: String) throws(PathRejection) -> [String] {
        guard !relative.isEmpty else { throw .empty }
        guard !relative.hasPrefix("/") else { throw .forbiddenComponent("/") }
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for part in parts {
            // Hidden names also cover `.`/`..` and the trainer's `.state.tmp`/`.state.old` swaps.
            if part.isEmpty || part.hasPrefix(".") || part.contains("\\") || part.contains("%")
                || part.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                throw .forbiddenComponent(part)
            }
        }
        return parts
    }

    /// The real URL of an existing regular file named by a decoded path relative to the root.
    public func file(_ relative: String) throws(PathRejection) -> URL {
        let url = try existing(relative)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw .notFound(relative)
        }
        return url
    }

    /// The real URL of an existing folder named by a decoded path relative to the root.
    public func folder(_ relative: String) throws(PathRejection) -> URL {
        let url = try existing(relative)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .notFound(relative)
        }
        return url
    }

    /// Same as `file`, for a path taken raw from a URL (percent-decoded once here).
    public func file(encoded: String) throws(PathRejection) -> URL {
        guard let decoded = encoded.removingPercentEncoding else { throw .badEncoding(encoded) }
        return try file(decoded)
    }

    private func existing(_ relative: String) throws(PathRejection) -> URL {
        let parts = try Self.components(of: relative)
        let joined = parts.reduce(url) { $0.appendingPathComponent($1) }
        guard let real = Self.realPath(joined.path) else { throw .notFound(relative) }
        guard contains(real) else { throw .outsideRoot(relative) }
        return URL(fileURLWithPath: real)
    }

    /// Whether a real (resolved) path is the root or lies below it.
    func contains(_ realPath: String) -> Bool {
        realPath == path || realPath.hasPrefix(path.hasSuffix("/") ? path : path + "/")
    }

    /// The path of a URL below the root, relative to it ("pipe/run/log.csv"), or nil when outside.
    public func relative(_ url: URL) -> String? {
        let full = url.standardizedFileURL.path
        let prefix = path.hasSuffix("/") ? path : path + "/"
        guard full.hasPrefix(prefix) else { return nil }
        return String(full.dropFirst(prefix.count))
    }
}

/// An error with a message meant for the person running the dashboard.
public struct DashboardError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
