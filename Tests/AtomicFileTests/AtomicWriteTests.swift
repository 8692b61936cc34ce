import AtomicFile
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
}
