// The safetensors reader and writer against the real `safetensors` package: its files read exactly,
// ours read exactly by it, the same bytes as its writer, and its rejections reproduced on a corpus of
// malformed files (reference/fixtures/safetensors_files.py, reference/check_safetensors.py).
import Foundation
import Testing
import TestSupport
@testable import Torch

private let area = "safetensors_files"

private struct ExpectedTensor: Decodable {
    let dtype: String
    let shape: [Int]
    let hex: String
    let values: [String]
}

private struct ExpectedFile: Decodable {
    let metadata: [String: String]?
    let tensors: [String: ExpectedTensor]
    let unsupported: [String: String]?
}

private struct MalformedCase: Decodable {
    let file: String
    let reason: String
    let detail: String
    let reference_rejects: Bool
    let reference_error: String?
}

private struct AcceptedCase: Decodable {
    struct Info: Decodable {
        let dtype: String
        let shape: [Int]
    }
    let file: String
    let tensors: [String: Info]
    let metadata: [String: String]?
}

private func decode<T: Decodable>(_ type: T.Type, _ file: String) throws -> T {
    try JSONDecoder().decode(type, from: Data(contentsOf: Fixtures.url(area, file)))
}

private struct MissingExpectation: Error, CustomStringConvertible {
    let name: String
    var description: String { "expected.json has no entry for \(name)" }
}

private func expected(_ name: String) throws -> ExpectedFile {
    guard let e = try decode([String: ExpectedFile].self, "expected.json")[name + ".safetensors"] else {
        throw MissingExpectation(name: name)
    }
    return e
}

/// The format's names for the dtypes Inkwell loads, written out here rather than taken from the code under test.
private let dtypes: [String: DType] = [
    "F32": .float32, "F16": .float16, "BF16": .bfloat16, "F64": .float64, "I64": .int64, "I32": .int32,
    "I16": .int16, "I8": .int8, "U8": .uint8, "BOOL": .bool,
]

private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

/// Shape, dtype, every byte, and every value (NaN matching NaN, -0.0 only -0.0) of a tensor.
private func expectExact(_ t: Tensor, _ e: ExpectedTensor, _ label: String,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(t.shape == e.shape, "\(label): shape", sourceLocation: sourceLocation)
    #expect(t.dtype == dtypes[e.dtype], "\(label): dtype \(t.dtype), expected \(e.dtype)", sourceLocation: sourceLocation)
    #expect(hex(try t.bytes()) == e.hex, "\(label): bytes", sourceLocation: sourceLocation)
    if t.dtype.isFloatingPoint {
        let actual = try t.to(.float64).toArray(Double.self)
        let wanted = e.values.map { Double($0) }
        let same = actual.count == wanted.count && zip(actual, wanted).allSatisfy { a, w in
            guard let w else { return false }
            return a.isNaN ? w.isNaN : a.bitPattern == w.bitPattern
        }
        #expect(same, "\(label): values \(actual.prefix(12)) != \(e.values.prefix(12))", sourceLocation: sourceLocation)
    } else {
        let actual = try t.to(.int64).toArray(Int64.self)
        #expect(actual == e.values.map { Int64($0) }, "\(label): values", sourceLocation: sourceLocation)
    }
}

/// Where two byte arrays first differ, with the headers shown (for a readable failure).
private func difference(_ a: [UInt8], _ b: [UInt8]) -> String? {
    guard a != b else { return nil }
    let at = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
    func header(_ x: [UInt8]) -> String { String(decoding: x.dropFirst(8).prefix(400), as: UTF8.self) }
    return "sizes \(a.count) vs \(b.count), first difference at byte \(at)\n  ours: \(header(a))\n  reference: \(header(b))"
}

/// The case name of a reason ("invalidOffset" for `.invalidOffset("b")`).
private func kind(_ reason: SafetensorsError.Reason) -> String {
    String("\(reason)".prefix { $0 != "(" })
}

@Suite struct SafetensorsTests {
    // MARK: Reading the reference's files

    @Test(arguments: ["all_dtypes", "plain", "one_key_metadata", "empty_metadata", "empty", "unaligned"])
    func readsReferenceFilesExactly(_ name: String) throws {
        let e = try expected(name)
        let file = try SafetensorsFile(url: Fixtures.url(area, name + ".safetensors"))
        #expect(Set(file.entries.keys) == Set(e.tensors.keys))
        #expect(file.metadata == (e.metadata ?? [:]))
        for (key, want) in e.tensors {
            #expect(file.entries[key]?.dtypeName == want.dtype, "\(key): dtype name")
            try expectExact(try file.tensor(key), want, "\(name)/\(key)")
        }
        // Keys come in file order: each tensor starts where the one before it ends.
        let ranges = file.keys.compactMap { file.entries[$0] }
        #expect(ranges.count == e.tensors.count)
        #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.end == $1.start })
        // Through the one-call API too.
        let (all, metadata) = try Safetensors.load(Fixtures.url(area, name + ".safetensors"))
        #expect(Set(all.keys) == Set(e.tensors.keys))
        #expect(metadata == (e.metadata ?? [:]))
        for (key, want) in e.tensors { try expectExact(try all.get(key), want, "load \(name)/\(key)") }
    }

    @Test func unsupportedDTypesAreListedButRefusedClearly() throws {
        let e = try expected("unsupported")
        let url = try Fixtures.url(area, "unsupported.safetensors")
        let file = try SafetensorsFile(url: url)
        let unsupported = try #require(e.unsupported)
        #expect(Set(file.entries.keys) == Set(unsupported.keys).union(e.tensors.keys))
        for (key, dtypeName) in unsupported {
            #expect(file.entries[key]?.dtypeName == dtypeName)
            #expect(file.entries[key]?.dtype == nil)
            do {
                _ = try file.tensor(key)
                Issue.record("\(key): loaded a \(dtypeName) tensor")
            } catch let error as SafetensorsError {
                #expect(error.reason == .unsupportedDType(key, dtypeName))
                #expect(error.description.hasPrefix(url.path + ": "))
                #expect(error.description.contains(dtypeName))
            }
        }
        for (key, want) in e.tensors { try expectExact(try file.tensor(key), want, key) }
        #expect(throws: SafetensorsError.self) { try file.tensors() }
        do {
            _ = try file.tensor("absent")
            Issue.record("a missing tensor was returned")
        } catch let error as SafetensorsError {
            #expect(error.reason == .missingTensor("absent"))
        }
    }

    @Test func unusualButValidFilesOpenLikeTheReference() throws {
        let cases = try decode([AcceptedCase].self, "accepted.json")
        #expect(cases.count >= 10)
        for c in cases {
            let file = try SafetensorsFile(url: Fixtures.url(area, c.file))
            #expect(Set(file.entries.keys) == Set(c.tensors.keys), "\(c.file)")
            #expect(file.metadata == (c.metadata ?? [:]), "\(c.file)")
            for (key, info) in c.tensors {
                #expect(file.entries[key]?.dtypeName == info.dtype, "\(c.file): \(key)")
                #expect(file.entries[key]?.shape == info.shape, "\(c.file): \(key)")
                guard file.entries[key]?.dtype != nil else { continue }
                do {
                    #expect(try file.tensor(key).shape == info.shape, "\(c.file): \(key)")
                } catch let error as TorchError where info.shape.contains(0) {
                    // libtorch refuses sizes whose contiguous strides overflow int64, even with no
                    // elements (Python reshapes instead): a clean error is the bar here, not a crash.
                    #expect("\(error)".contains("overflow"), "\(c.file): \(error)")
                }
            }
        }
    }

    // MARK: The malformed corpus

    /// Was: opening a named pipe blocked until a writer came (forever, given as --lora).
    @Test func aNamedPipeIsRefusedByTypeWithoutBlocking() throws {
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("inkwell-\(UUID().uuidString).safetensors")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        defer { try? FileManager.default.removeItem(at: fifo) }
        #expect(throws: SafetensorsError.self) { _ = try SafetensorsFile(url: fifo) }
        do { _ = try SafetensorsFile(url: fifo) } catch { #expect("\(error)".contains("named pipe")) }
    }

    /// A store bounded by a file refuses the first parameter past it, before allocating it; a shape whose size
    /// overflows is refused with or without a bound.
    @Test func aBoundedStoreRefusesParametersPastItsWeightsFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("inkwell-\(UUID().uuidString).safetensors")
        try Safetensors.save(["w": try Tensor.zeros([4, 4])], to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let store = VarStore(initialize: false)
        store.budget = WeightsBudget(file: try SafetensorsFile(url: url), config: "unet/config.json")
        _ = try store.root.parameter("w", shape: [4, 4], initializer: .none)
        do {
            _ = try store.root.parameter("huge", shape: [1 << 30, 1 << 30], initializer: .none)
            Issue.record("a parameter larger than the file was allocated")
        } catch {
            #expect("\(error)".contains("unet/config.json describes a model larger than \(url.path)"))
            #expect("\(error)".contains("huge [1073741824, 1073741824]"))
        }
        #expect(throws: TorchError.self) {
            _ = try VarStore(initialize: false).root.parameter("x", shape: [Int.max, 4], initializer: .none)
        }
    }

    @Test func malformedFilesAreRejectedWithTheRightReason() throws {
        let cases = try decode([MalformedCase].self, "malformed.json")
        #expect(cases.count >= 50)
        let reasons = Set(cases.map(\.reason))
        for r in ["headerTooSmall", "headerTooLarge", "invalidHeaderLength", "invalidHeader", "invalidHeaderStart",
                  "invalidHeaderDeserialization", "invalidOffset", "misalignedSlice", "tensorInvalidInfo",
                  "validationOverflow", "metadataIncompleteBuffer"] {
            #expect(reasons.contains(r), "the corpus has no case for \(r)")
        }
        for c in cases {
            // The corpus is malformed by the reference's own reader (except where the README is stricter).
            if c.reference_rejects { #expect(c.reference_error != nil, "\(c.file): the reference accepted it") }
            let url = try Fixtures.url(area, c.file)
            do {
                let file = try SafetensorsFile(url: url)
                _ = try file.tensors()
                Issue.record("\(c.file): accepted; expected \(c.reason)")
            } catch let error as SafetensorsError {
                #expect(kind(error.reason) == c.reason, "\(c.file): \(error)")
                #expect(error.path == url.path)
                #expect(error.description.hasPrefix(url.path + ": "), "\(error)")
                if !c.detail.isEmpty {
                    #expect(error.description.contains(c.detail), "\(c.file): '\(error)' does not mention \(c.detail)")
                }
            } catch {
                Issue.record("\(c.file): threw \(error), not a SafetensorsError")
            }
        }
    }

    @Test func unreadablePathsThrowIOErrors() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for url in [dir.appendingPathComponent("absent.safetensors"), dir] {
            do {
                _ = try SafetensorsFile(url: url)
                Issue.record("\(url.path) opened")
            } catch let error as SafetensorsError {
                #expect(kind(error.reason) == "io", "\(error)")
                #expect(error.description.hasPrefix(url.path + ": "))
            }
        }
    }

    // MARK: Writing

    @Test(arguments: ["plain", "one_key_metadata", "empty_metadata", "empty"])
    func writerReproducesTheReferenceBytes(_ name: String) throws {
        let url = try Fixtures.url(area, name + ".safetensors")
        let reference = [UInt8](try Data(contentsOf: url))
        let metadata = try expected(name).metadata
        var tensors = try SafetensorsFile(url: url).tensors()
        let ours = try Safetensors.serialize(tensors, metadata: metadata)
        #expect(difference(ours, reference) == nil, "\(difference(ours, reference) ?? "")")

        // A non-contiguous view is written in row-major order, like its contiguous copy.
        if let t = tensors["transposed"] {
            let view = try t.transpose(0, 1).contiguous().transpose(0, 1)
            #expect(!view.isContiguous)
            tensors["transposed"] = view
        }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.safetensors")
        try Safetensors.save(tensors, metadata: metadata, to: out)
        let saved = [UInt8](try Data(contentsOf: out))
        #expect(difference(saved, reference) == nil, "\(difference(saved, reference) ?? "")")
    }

    @Test(arguments: ["all_dtypes", "one_key_metadata", "empty_metadata", "empty"])
    func pythonReadsOurFilesExactly(_ name: String) throws {
        let reference = try Fixtures.url(area, name + ".safetensors")
        let e = try expected(name)
        var tensors = try SafetensorsFile(url: reference).tensors()
        if let t = tensors["float64"] { tensors["float64"] = try t.permute([2, 0, 1]).contiguous().permute([1, 2, 0]) }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ours = dir.appendingPathComponent("ours.safetensors")
        try Safetensors.save(tensors, metadata: e.metadata, to: ours)
        let report = try runReference("check_safetensors.py", [ours.path, reference.path])
        #expect(report.hasPrefix("OK \(e.tensors.count) tensors"), "\(report)")
    }

    @Test func writerRefusesWhatTheFormatCannotHold() throws {
        let t = try Tensor([Float(1)])
        do {
            _ = try Safetensors.serialize(["__metadata__": t])
            Issue.record("a tensor named __metadata__ was serialised")
        } catch let error as SafetensorsError {
            #expect(error.reason == .invalidTensorName("__metadata__"))
        }
    }

    @Test func saveIsAtomic() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("weights.safetensors")
        let old = Data("an older file".utf8)
        try old.write(to: target)
        func listing() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() }

        // A failed save leaves the old file and no temporary file behind.
        #expect(throws: SafetensorsError.self) {
            try Safetensors.save(["__metadata__": try Tensor([Float(1)])], to: target)
        }
        #expect(try Data(contentsOf: target) == old)
        #expect(try listing() == ["weights.safetensors"])

        // A successful one replaces it.
        let tensors = ["w": try Tensor([Float(1.5), -2, 3], shape: [3]), "b": try Tensor([Int64(4)], shape: [])]
        try Safetensors.save(tensors, metadata: ["k": "v"], to: target)
        #expect(try listing() == ["weights.safetensors"])
        #expect(try [UInt8](Data(contentsOf: target)) == Safetensors.serialize(tensors, metadata: ["k": "v"]))
        let (back, metadata) = try Safetensors.load(target)
        #expect(metadata == ["k": "v"])
        try expectEqual(try back.get("w"), try tensors.get("w"), "w")
        try expectEqual(try back.get("b"), try tensors.get("b"), "b")
    }

    // MARK: Memory mapping

    @Test func borrowedTensorsOutliveTheReader() throws {
        let e = try expected("all_dtypes")
        var file: SafetensorsFile? = try SafetensorsFile(url: Fixtures.url(area, "all_dtypes.safetensors"))
        weak let whole = file?.file
        var borrowed = try #require(try file?.materialize("large"))
        weak let mapping = borrowed.mapping
        #expect(mapping != nil, "a page-sized aligned tensor is mapped, not copied")
        #expect(try file?.materialize("float32").mapping == nil, "a tensor smaller than a page is copied")
        var tensor: Tensor? = borrowed.tensor
        borrowed = (try Tensor([Float(0)]), nil)
        file = nil
        // The reader's own mapping is gone; the tensor keeps its pages alive.
        #expect(whole == nil)
        #expect(mapping != nil)
        try expectExact(try #require(tensor), try #require(e.tensors["large"]), "after the reader is gone")
        tensor = nil
        #expect(mapping == nil)
    }

    @Test func unalignedTensorsAreCopied() throws {
        let e = try expected("unaligned")
        let file = try SafetensorsFile(url: Fixtures.url(area, "unaligned.safetensors"))
        let float = try file.materialize("b_f32")  // at byte 4099 of the data
        #expect(float.mapping == nil)
        let bytes = try file.materialize("a_u8")  // 1-byte elements are always aligned
        #expect(bytes.mapping != nil)
        try expectExact(float.tensor, try #require(e.tensors["b_f32"]), "b_f32")
        try expectExact(bytes.tensor, try #require(e.tensors["a_u8"]), "a_u8")
    }

    @Test func writingIntoABorrowedTensorChangesNothingElse() throws {
        let e = try expected("plain")
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("copy.safetensors")
        try FileManager.default.copyItem(at: Fixtures.url(area, "plain.safetensors"), to: url)
        let before = try Data(contentsOf: url)
        do {
            let file = try SafetensorsFile(url: url)
            let (t, mapping) = try file.materialize("large")
            #expect(mapping != nil)
            let neighbour = try file.tensor("large_bf16")
            try t.fill_(42)  // would fault on a read-only mapping
            #expect(try t.toArray(Float.self) == [Float](repeating: 42, count: 4096))
            try expectExact(neighbour, try #require(e.tensors["large_bf16"]), "neighbour")
            try expectExact(try file.tensor("large"), try #require(e.tensors["large"]), "a second read")
        }
        #expect(try Data(contentsOf: url) == before)
    }

    @Test func aFileChangedAfterOpeningIsNeverMisread() throws {
        let e = try expected("plain")
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("weights.safetensors")
        try FileManager.default.copyItem(at: Fixtures.url(area, "plain.safetensors"), to: url)

        // Saving over an open file replaces it by a rename: the reader keeps the file it validated.
        let file = try SafetensorsFile(url: url)
        try Safetensors.save(["other": try Tensor([Float(1)])], to: url)
        try expectExact(try file.tensor("large"), try #require(e.tensors["large"]), "after a save over it")
        try expectExact(try file.tensor("float32"), try #require(e.tensors["float32"]), "after a save over it")

        // Truncated in place, a file is refused rather than read past its end (which would fault).
        try FileManager.default.removeItem(at: url)
        try FileManager.default.copyItem(at: Fixtures.url(area, "plain.safetensors"), to: url)
        let truncated = try SafetensorsFile(url: url)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 100)
        try handle.close()
        for key in ["large", "float32"] {
            do {
                _ = try truncated.tensor(key)
                Issue.record("\(key) was read from a truncated file")
            } catch let error as SafetensorsError {
                #expect(kind(error.reason) == "io", "\(error)")
            }
        }
    }

    /// A safetensors file whose header length starts with the byte 0x80 (a pickle's first byte) is not a pickle.
    @Test func aHeaderLengthStartingWith0x80IsNotAPickle() throws {
        let url = try temporaryDirectory().appendingPathComponent("w.safetensors")
        var padding = ""
        repeat {
            try Safetensors.save(["w": try Tensor([Float(1)])], metadata: ["pad": padding], to: url)
            padding += "x"
        } while try Data(contentsOf: url).first != 0x80
        try PickledCheckpoint.refuse(url)
        let pickle = url.deletingLastPathComponent().appendingPathComponent("p.safetensors")
        try Data([0x80, 0x02, 0x7D, 0x71, 0x00, 0x2E]).write(to: pickle)
        #expect(throws: PickleRefused.self) { try PickledCheckpoint.refuse(pickle) }
    }
}
