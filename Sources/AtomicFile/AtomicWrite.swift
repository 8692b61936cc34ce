// The one way Inkwell writes a file: into a hidden temporary sibling (`.<name>.<pid>-<uuid>.tmp`), flushed to
// disk, then renamed over the final name. A reader, or a run that was interrupted or crashed, sees the old
// file or the new one, never half of one.
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file that could not be written: names the file and says what failed.
public struct AtomicWriteError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let failure: String

    public init(path: String, failure: String) {
        self.path = path
        self.failure = failure
    }

    public var description: String { "\(path): \(failure)" }

    /// The error for a failed system call on `path`, from `errno`: a full disk (or quota) says so and what to do,
    /// since the caller's half-done work is safe (the file at `path`, if any, is the previous one).
    static func posix(path: String, _ what: String, code: Int32 = errno) -> AtomicWriteError {
        if code == ENOSPC || code == EDQUOT {
            return AtomicWriteError(path: path, failure: "\(what): disk full (\(String(cString: strerror(code)))); "
                + "the previous file is left as it was: free space on that disk and run the command again "
                + "(train: with --resume, to go on from the last saved state)")
        }
        return AtomicWriteError(path: path, failure: "\(what): \(String(cString: strerror(code)))")
    }
}

/// Writes `data` to `url` atomically (see `writeAtomically(to:_:)`).
public func writeAtomically(_ data: Data, to url: URL) throws {
    try writeAtomically(to: url) { write in try data.withUnsafeBytes { try write($0) } }
}

/// Streams a file's contents (through the `write` function `body` receives) into a fresh temporary
/// sibling of `url`, flushes it to disk, then renames it over `url`, creating the folder if needed. On
/// any error, `body`'s own included, the temporary file is removed and an existing file at `url` is left
/// as it was.
public func writeAtomically(
    to url: URL, _ body: (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void
) throws {
    func failure(_ what: String) -> AtomicWriteError { AtomicWriteError.posix(path: url.path, what) }
    let dir = url.deletingLastPathComponent()
    do {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    } catch {
        throw AtomicWriteError(path: url.path, failure: "cannot create its folder: \(error.localizedDescription)")
    }
    let temp = dir.appendingPathComponent(AtomicWrite.temporaryName(for: url.lastPathComponent)).path
    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw failure("cannot create a temporary file in \(dir.path)") }
    var isOpen = true
    var killHalfway = WriteFaults.startWrite()
    do {
        try body { buffer in
            guard var p = buffer.baseAddress else { return }
            var left = buffer.count
            while left > 0 {
                let n = WriteFaults.perform(fd, p, left, killHalfway: killHalfway)
                killHalfway = false
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure("cannot write")
                }
                p += n
                left -= n
            }
        }
        // Flushed before the rename, so that after a crash the name holds the old or the new file.
        guard fsync(fd) == 0 else { throw failure("cannot flush the file to disk") }
        isOpen = false
        guard close(fd) == 0 else { throw failure("cannot close the written file") }
        guard rename(temp, url.path) == 0 else { throw failure("cannot rename the written file into place") }
    } catch {
        if isOpen { close(fd) }
        unlink(temp)
        throw error
    }
    // The rename is durable once the folder is flushed too. Best effort: the new file is already in place,
    // and some file systems refuse to flush a folder.
    let dirFD = open(dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dirFD >= 0 {
        _ = fsync(dirFD)
        close(dirFD)
    }
}

/// Appends `data` to the existing file at `url` in one `write(2)` (a log row: a reader or a killed run sees the
/// row whole or not at all); a full disk is reported as `writeAtomically` reports it.
public func append(_ data: Data, to url: URL) throws {
    let fd = open(url.path, O_WRONLY | O_APPEND | O_CLOEXEC)
    guard fd >= 0 else { throw AtomicWriteError.posix(path: url.path, "cannot open to append") }
    defer { close(fd) }
    let killHalfway = WriteFaults.startWrite()
    let written = data.withUnsafeBytes { buffer -> Int in
        guard let p = buffer.baseAddress else { return 0 }
        return WriteFaults.perform(fd, p, buffer.count, killHalfway: killHalfway)
    }
    if written != data.count {
        let code = written < 0 ? errno : ENOSPC
        // A short append leaves part of a row: cut it off again, so that the file holds whole rows only.
        var info = stat()
        if fstat(fd, &info) == 0, written > 0 { _ = ftruncate(fd, info.st_size - off_t(written)) }
        throw AtomicWriteError.posix(path: url.path, "cannot append", code: code)
    }
}

public enum AtomicWrite {
    /// The writer's pid is in the name: a process cleaning up a folder must not take the temporary of another that
    /// is still writing there (two runs caching latents of one dataset, data-parallel ranks sharing a cache).
    static func temporaryName(for name: String) -> String { ".\(name).\(getpid())-\(UUID().uuidString).tmp" }

    /// The pid of the process that writes temporary `name`; nil for a name without one (an older Inkwell's).
    static func writer(ofTemporary name: String) -> pid_t? {
        guard let tag = name.dropLast(".tmp".count).split(separator: ".").last,
              let dash = tag.firstIndex(of: "-") else { return nil }
        return pid_t(tag[..<dash])
    }

    /// Whether `pid` is a process that has not exited (a zombie has: it writes nothing more).
    static func isRunning(_ pid: pid_t) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        #if os(Linux)
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") {
            return !stat[close...].hasPrefix(") Z")
        }
        #endif
        return true
    }

    /// Whether a file name is one of the temporaries a write leaves behind when the process is killed
    /// between the write and the rename.
    public static func isTemporary(_ name: String) -> Bool {
        name.hasPrefix(".") && name.hasSuffix(".tmp")
    }

    /// Removes such leftovers from a folder the caller owns: those of processes that are gone, never one that a
    /// running process (this one included) may still rename into place.
    public static func removeTemporaries(in directory: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where isTemporary(name) {
            if let pid = writer(ofTemporary: name), isRunning(pid) { continue }
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }
}
