// The one check that a path names a regular file before Inkwell opens it: opening a named pipe blocks
// until a writer comes, a device can yield endless bytes, and a socket cannot be opened at all.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A path that is not a regular file: names the path (and the flag or key it came from) and says what it is.
public struct NotARegularFile: Error, CustomStringConvertible, Sendable {
    public let path: String
    /// What the path is instead ("is a named pipe (FIFO)"), or why it cannot be looked at.
    public let reason: String
    /// The flag or key the path came from ("--lora"), when the caller knows it.
    public let setting: String?

    public var description: String {
        "\(setting.map { "\($0) " } ?? "")\(path): \(reason); give a regular file"
    }
}

public enum RegularFile {
    /// nil when `path` (symbolic links followed) is a regular file; otherwise what it is instead.
    public static func problem(atPath path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            if code == ELOOP { return "is a symbolic link loop" }
            if code == ENOENT { return lstat(path, &info) == 0 ? "is a symbolic link to nothing" : "does not exist" }
            return "cannot be looked at (\(String(cString: strerror(code))))"
        }
        return problem(mode: info.st_mode)
    }

    /// nil for a regular file's `st_mode`; otherwise what the mode says the file is.
    public static func problem(mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "is a folder, not a file"
        case S_IFIFO: return "is a named pipe (FIFO), not a regular file"
        case S_IFCHR: return "is a character device, not a regular file"
        case S_IFBLK: return "is a block device, not a regular file"
        case S_IFSOCK: return "is a socket, not a regular file"
        default: return "is not a regular file"
        }
    }

    /// Throws `NotARegularFile` unless `path` is a regular file; `setting` is the flag or key that named it.
    public static func require(_ path: String, setting: String? = nil) throws {
        if let reason = problem(atPath: path) { throw NotARegularFile(path: path, reason: reason, setting: setting) }
    }
}
