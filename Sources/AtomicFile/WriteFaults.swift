// Faults injected into Inkwell's writes, for the kill- and disk-full-safety tests (Tests/KillSafetyTests):
// read once from the environment, inert when unset.
//   INKWELL_FAULT_KILL_IN_WRITE=N      the process SIGKILLs itself halfway through the bytes of its Nth write
//                                      (a crash inside a checkpoint, latent-cache, caption or manifest write)
//   INKWELL_FAULT_DISK_FULL_AFTER=B    every write fails with ENOSPC once the process has written B bytes (a full
//                                      disk, where the machine cannot mount a small file system to fill)
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum WriteFaults {
    private static let environment = ProcessInfo.processInfo.environment
    static let killInWrite: Int? = environment["INKWELL_FAULT_KILL_IN_WRITE"].flatMap { Int($0) }
    static let diskFullAfter: Int? = environment["INKWELL_FAULT_DISK_FULL_AFTER"].flatMap { Int($0) }

    /// Writes (atomic or appends) and bytes so far; only counted when a fault is asked for.
    nonisolated(unsafe) private static var writes = 0
    nonisolated(unsafe) private static var bytes = 0
    private static let lock = NSLock()

    /// Called once at the start of each write: whether this is the write to be killed halfway.
    static func startWrite() -> Bool {
        guard let killInWrite else { return false }
        return lock.withLock {
            writes += 1
            return writes == killInWrite
        }
    }

    /// Whether `count` more bytes exceed the injected disk size (and counts them).
    static func diskFull(adding count: Int) -> Bool {
        guard let diskFullAfter else { return false }
        return lock.withLock {
            bytes += count
            return bytes > diskFullAfter
        }
    }

    /// `write(2)` of `count` bytes with the injected faults: SIGKILL after half of them when `killHalfway`,
    /// ENOSPC past the injected disk size.
    static func perform(_ fd: Int32, _ p: UnsafeRawPointer, _ count: Int, killHalfway: Bool) -> Int {
        if killHalfway {
            _ = write(fd, p, max(1, count / 2))
            kill(getpid(), SIGKILL)
        }
        if diskFull(adding: count) {
            errno = ENOSPC
            return -1
        }
        return write(fd, p, count)
    }
}
