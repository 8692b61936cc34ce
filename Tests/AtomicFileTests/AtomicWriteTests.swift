@testable import AtomicFile
import Foundation
import Testing

@Suite struct AtomicWriteTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inkwell-test-\(UUID().uuidString)")

    func listing(_ folder: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    }

    @Test func anInterruptedWriteLeavesTheOldFile() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("weights.safetensors")
        let old = Data("an older file".utf8)
        try writeAtomically(old, to: target)  // creates the folder
        struct Interrupted: Error {}
        #expect(throws: Interrupted.self) {
            try writeAtomically(to: target) { write in
                try [UInt8](repeating: 7, count: 1000).withUnsafeBytes { try write($0) }
                throw Interrupted()
            }
        }
        #expect(try Data(contentsOf: target) == old)
        #expect(try listing(dir) == ["weights.safetensors"])

        let new = Data(repeating: 9, count: 3000)
        try writeAtomically(to: target) { write in
            try new.prefix(1000).withUnsafeBytes { try write($0) }
            try new.dropFirst(1000).withUnsafeBytes { try write($0) }
        }
        #expect(try Data(contentsOf: target) == new)
        #expect(try listing(dir) == ["weights.safetensors"])
    }

    @Test func aFailureNamesTheFileAndWhatFailed() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let blocker = dir.appendingPathComponent("file")
        try writeAtomically(Data("x".utf8), to: blocker)
        let target = blocker.appendingPathComponent("inside.txt")  // its folder is a file
        do {
            try writeAtomically(Data("y".utf8), to: target)
            Issue.record("a write under a file succeeded")
        } catch let error as AtomicWriteError {
            #expect(error.path == target.path)
            #expect(error.description.hasPrefix("\(target.path): cannot create its folder"))
        }
        #expect(try listing(dir) == ["file"])
    }

    @Test func leftoversAreRecognisedAndRemoved() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in [".a.png.1234.tmp", ".manifest.json.5678.tmp", "a.png", "notes.tmp", ".hidden"] {
            try Data().write(to: dir.appendingPathComponent(name))
        }
        #expect(AtomicWrite.isTemporary(".a.png.1234.tmp"))
        #expect(!AtomicWrite.isTemporary("notes.tmp") && !AtomicWrite.isTemporary(".hidden"))
        AtomicWrite.removeTemporaries(in: dir)
        #expect(try listing(dir) == [".hidden", "a.png", "notes.tmp"])
    }

    @Test func aRunningWritersTemporaryIsLeftToIt() throws {
        // Two runs caching latents in one dataset: the one that starts must not delete what the other is about to
        // rename into place ("cannot rename the written file into place: No such file or directory").
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        defer { sleeper.terminate(); sleeper.waitUntilExit() }
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let mine = AtomicWrite.temporaryName(for: "a.safetensors")
        #expect(mine.hasPrefix(".a.safetensors.\(getpid())-") && AtomicWrite.isTemporary(mine))
        let uuid = UUID().uuidString
        let names = [mine, ".b.safetensors.\(sleeper.processIdentifier)-\(uuid).tmp",
                     ".c.safetensors.\(gone.processIdentifier)-\(uuid).tmp", ".d.safetensors.\(uuid).tmp"]
        for name in names { try Data().write(to: dir.appendingPathComponent(name)) }
        AtomicWrite.removeTemporaries(in: dir)
        #expect(try listing(dir) == names[0...1].sorted(), "only the temporaries of running writers stay")
    }
}
