// The lock huggingface_hub takes around each blob it writes (file_download.py: WeakFileLock on
// `<cache>/.locks/models--org--name/<etag>.lock`, through filelock: flock(LOCK_EX) on that file, created with
// mode 0664 so users sharing a cache can wait on it, and left in place on release so every waiter locks the same
// inode). Taking the same lock keeps two `inkwell download`s, or Inkwell and diffusers, from writing one blob
// (and its `.incomplete`) at once; the second waits, then finds the blob there.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class BlobLock {
    let file: URL
    private var descriptor: Int32

    /// `<cache>/.locks/models--org--name/<etag>.lock`.
    static func path(cache: URL, repo: String, etag: String) -> URL {
        cache.appendingPathComponent(".locks").appendingPathComponent(HubCache.repoFolder(repo, cache: cache).lastPathComponent)
            .appendingPathComponent("\(etag).lock")
    }

    /// Waits for the lock, polling so that a cancelled task (Ctrl-C) stops waiting; `waiting` is called once
    /// if another process holds it.
    static func acquire(cache: URL, repo: String, etag: String, waiting: () -> Void = {}) async throws -> BlobLock {
        let file = path(cache: cache, repo: repo, etag: etag)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let descriptor = open(file.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o664)
        guard descriptor >= 0 else {
            throw HubCacheError(subject: file.path, message: "cannot open the download lock: \(String(cString: strerror(errno)))")
        }
        // The umask would otherwise take the group's write bit away.
        _ = fchmod(descriptor, 0o664)
        var told = false
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let error = errno
            guard error == EWOULDBLOCK || error == EINTR else {
                close(descriptor)
                throw HubCacheError(subject: file.path, message: "cannot lock: \(String(cString: strerror(error)))")
            }
            if !told { waiting(); told = true }
            do { try await Task.sleep(for: .milliseconds(100)) } catch {
                close(descriptor)
                throw error
            }
        }
        return BlobLock(file: file, descriptor: descriptor)
    }

    private init(file: URL, descriptor: Int32) {
        self.file = file
        self.descriptor = descriptor
    }

    /// Unlocks; the file stays (filelock leaves it too).
    func release() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
