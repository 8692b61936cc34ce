// Issue 17: an 8000×8000 all-zero PNG (184 KB, exactly prepare's pixel limit) once took `prepare` to 4.9 GB.
// `inkwell prepare` (the debug binary, as a user runs it) on 8000×8000 inputs at 512 px must stay under a
// stated peak RSS, measured for that child alone (wait4's rusage): the PNG is decoded a band of rows at a
// time straight into the resize, the JPEG by libjpeg's DCT scaling at 1/8. Before the fix these runs
// peaked at 1.1–1.3 GB (with the float copies already banded) and 4.9 GB before that.
import Foundation
import Imaging
import Testing
import TestSupport
@testable import Training

@Suite(.serialized) struct PrepareMemoryTests {
    static let binary = Fixtures.packageRoot.appendingPathComponent(".build/debug/inkwell")
    /// The bound: libtorch's own resident size (about 150 MB here) plus a wide margin; the full RGB image
    /// alone is 192 MB, so a decode that holds it, or any float copy of it, fails.
    static let peakLimit = 450 << 20

    /// Runs `binary arguments…`, its output to `log`; the exit status and the child's own peak RSS in bytes.
    static func measure(_ arguments: [String], log: URL) throws -> (status: Int32, peakBytes: Int) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([binary.path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, binary.path, &actions, nil, argv, environ)
        guard spawned == 0 else { throw DatasetError("cannot start \(binary.path): error \(spawned)") }
        var status: Int32 = 0
        var usage = rusage()
        guard wait4(pid, &status, 0, &usage) == pid else { throw DatasetError("wait4 failed: errno \(errno)") }
        let exitStatus = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return (exitStatus, usage.ru_maxrss * 1024)  // Linux reports kilobytes
    }

    func prepare(_ file: String, check: (Image) throws -> Void) throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build first: swift build --build-tests")
        let dir = try temporaryDirectory()
        let raw = dir.appendingPathComponent("raw")
        try FileManager.default.createDirectory(at: raw, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: try Fixtures.url("decode_draft", "big/\(file)"), to: raw.appendingPathComponent(file))
        let log = dir.appendingPathComponent("log.txt")
        let start = Date()
        let (status, peak) = try Self.measure(["prepare", "--input", raw.path, "--output", dir.appendingPathComponent("data").path,
                                               "--name", "ds", "--resolution", "512"], log: log)
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        print("prepare \(file) 8000×8000 → 512: peak RSS \(peak >> 20) MiB (limit \(Self.peakLimit >> 20) MiB), "
              + String(format: "%.1f s", Date().timeIntervalSince(start)))
        try #require(status == 0, "\(output)")
        #expect(peak < Self.peakLimit, "\(file): peak RSS \(peak >> 20) MiB, over \(Self.peakLimit >> 20) MiB")
        let manifest = try DatasetManifest.load(datasetDirectory: dir.appendingPathComponent("data/ds"))
        let entry = try #require(manifest?.images.first, "\(output)")
        #expect(entry.sourceWidth == 8000 && entry.sourceHeight == 8000, "the manifest records the source's own size")
        let image = try Image.load(dir.appendingPathComponent("data/ds").appendingPathComponent(entry.output))
        #expect(image.width == 512 && image.height == 512)
        try check(image)
    }

    @Test func allZeroPNGStaysSmall() throws {
        try prepare("zero.png") { image in #expect(image.pixels.allSatisfy { $0 == 0 }, "black stays black") }
    }

    @Test func rgbaStrokesPNGStaysSmall() throws {
        // Alpha strokes (a fifth of the tiles opaque) composited on white: mostly white, the red ramp in the strokes.
        try prepare("strokes_rgba.png") { image in
            let white = image.pixels.filter { $0 == 255 }.count
            #expect(white > image.pixels.count / 2 && white < image.pixels.count, "\(white) white samples")
        }
    }

    @Test func jpegStaysSmall() throws {
        // Grey 128 with a dark line every 97 rows: the mean stays near the source's (about 127).
        try prepare("photo.jpg") { image in
            let mean = Double(image.pixels.reduce(0) { $0 + Int($1) }) / Double(image.pixels.count)
            #expect(abs(mean - 126.8) < 2, "mean \(mean)")
        }
    }
}
