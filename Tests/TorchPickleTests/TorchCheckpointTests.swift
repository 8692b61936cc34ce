// Pickled checkpoints read without unpickling: the tensors torch.load(weights_only=True) gives, and hostile
// pickles refused by name with nothing run.
import Foundation
import Testing
import TestSupport
import Torch
@testable import TorchPickle

@Suite struct TorchCheckpointTests {
    @Test func stateDictEqualsTorchLoad() throws {
        let expected = try Safetensors.load(try Fixtures.url("ckpt", "expected.safetensors")).tensors
        for file in ["tiny.ckpt", "bare.pt"] {
            let tensors = try TorchCheckpoint.stateDict(try Fixtures.url("ckpt", file))
            #expect(Set(tensors.keys) == Set(expected.keys), "\(file)")
            for (name, tensor) in expected {
                let mine = try #require(tensors[name], "\(file): \(name)")
                #expect(mine.dtype == tensor.dtype && mine.shape == tensor.shape, "\(file): \(name)")
                #expect(try maxAbsDiff(mine.to(.float64), tensor.to(.float64)) == 0, "\(file): \(name)")
            }
        }
    }

    @Test func hostilePicklesAreRefusedByNameAndNothingRuns() throws {
        let marker = try Fixtures.url("ckpt", "tiny.ckpt").deletingLastPathComponent().appendingPathComponent("PWNED")
        for (file, global) in [("os_system.ckpt", "posix.system"), ("builtins_eval.ckpt", "__builtin__.eval"),
                               ("nested_reduce.ckpt", "__builtin__.dict")] {
            do {
                _ = try TorchCheckpoint.stateDict(try Fixtures.url("ckpt", file))
                Issue.record("\(file) was read")
            } catch let error as PickleError {
                #expect(error.description.contains("refused the global '\(global)'") && error.description.contains("nothing was executed"),
                        "\(file): \(error)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: marker.path))
        #expect(throws: PickleError.self) { try TorchCheckpoint.stateDict(try Fixtures.url("ckpt", "not_torch.ckpt")) }
    }
}
