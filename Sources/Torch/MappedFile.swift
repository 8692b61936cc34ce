// The memory mappings under `SafetensorsFile`: the whole file read-only for its header and for copied
// tensors, and a private mapping per borrowed (zero-copy) tensor.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AtomicFile

/// A file opened and mapped read-only, for the header and for tensors that are copied out. Pages are
/// read from disk only when touched. The descriptor stays open so that every later per-tensor mapping
/// is of the very file that was validated, even if another is renamed over its path meanwhile.
final class MappedFile: @unchecked Sendable {  // immutable after init
    let fd: Int32
    let base: UnsafeMutableRawPointer
    let size: Int

    init(path: String) throws {
        func ioError(_ what: String) -> SafetensorsError {
            SafetensorsError(path: path, reason: .io("\(what): \(String(cString: strerror(errno)))"))
        }
        // Non-blocking, so that a named pipe given as a weights file is refused below instead of waiting forever
        // for a writer; the flag changes nothing for a regular file.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw ioError("cannot open") }
        var mapped = false
        defer { if !mapped { close(fd) } }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ioError("cannot stat") }
        if let problem = RegularFile.problem(mode: info.st_mode) {
            throw SafetensorsError(path: path, reason: .io(problem))
        }
        let size = Int(info.st_size)
        // Checked before mapping: an empty file cannot be mapped, and this is the format's first rule.
        guard size >= 8 else { throw SafetensorsError(path: path, reason: .headerTooSmall) }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw ioError("mmap failed")
        }
        mapped = true
        (self.fd, self.base, self.size) = (fd, p, size)
    }

    deinit {
        munmap(base, size)
        close(fd)
    }

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Whether the file still has the size it had when opened. Pages past a shrunken end would
    /// fault (SIGBUS) when touched, so tensors are not read from a file truncated in place.
    var isIntact: Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && Int(info.st_size) == size
    }

    /// A private mapping of `count` bytes at `offset` for one tensor's storage, or nil where the kernel
    /// refuses one (the caller then copies). Writable copy-on-write: an in-place op on the tensor
    /// neither faults nor reaches the file or any other tensor read from it.
    func mapPrivately(offset: Int, count: Int) -> TensorMapping? {
        let start = offset - offset % Self.pageSize
        let length = offset - start + count
        guard let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, off_t(start)),
              p != MAP_FAILED else { return nil }
        return TensorMapping(base: p, length: length, data: p + (offset - start))
    }
}

/// The pages under one borrowed tensor; unmapped when libtorch frees the tensor's storage.
final class TensorMapping: @unchecked Sendable {  // owned by one tensor's storage
    let base: UnsafeMutableRawPointer
    let length: Int
    let data: UnsafeMutableRawPointer

    init(base: UnsafeMutableRawPointer, length: Int, data: UnsafeMutableRawPointer) {
        self.base = base
        self.length = length
        self.data = data
    }
    deinit { munmap(base, length) }
}
