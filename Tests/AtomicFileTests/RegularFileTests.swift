// The one "is this a regular file, else what is it" check that every input path goes through.
import AtomicFile
import Foundation
import Testing

@Suite struct RegularFileTests {
    @Test func saysWhatAPathIsWhenItIsNotARegularFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("inkwell-kind-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
        try Data("x".utf8).write(to: URL(fileURLWithPath: path("file")))
        #expect(mkfifo(path("pipe"), 0o600) == 0)
        try FileManager.default.createSymbolicLink(atPath: path("loop"), withDestinationPath: "loop")
        try FileManager.default.createSymbolicLink(atPath: path("dangling"), withDestinationPath: "nowhere")
        try FileManager.default.createSymbolicLink(atPath: path("link"), withDestinationPath: "file")
        #expect(RegularFile.problem(atPath: path("file")) == nil)
        #expect(RegularFile.problem(atPath: path("link")) == nil)
        #expect(RegularFile.problem(atPath: path("pipe")) == "is a named pipe (FIFO), not a regular file")
        #expect(RegularFile.problem(atPath: path("loop")) == "is a symbolic link loop")
        #expect(RegularFile.problem(atPath: path("dangling")) == "is a symbolic link to nothing")
        #expect(RegularFile.problem(atPath: path("absent")) == "does not exist")
        #expect(RegularFile.problem(atPath: folder.path) == "is a folder, not a file")
        #expect(RegularFile.problem(atPath: "/dev/null") == "is a character device, not a regular file")
        do {
            try RegularFile.require(path("pipe"), setting: "--lora")
            Issue.record("a pipe passed")
        } catch {
            #expect("\(error)" == "--lora \(path("pipe")): is a named pipe (FIFO), not a regular file; give a regular file")
        }
    }
}
