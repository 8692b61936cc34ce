import Foundation
import Testing
import TestSupport
@testable import Torch

/// Builds every layer of reference/fixtures/layers.py in the same order under the same keys.
private struct Layers {
    let linear, linearNoBias: Linear
    let conv, convGrouped: Conv2d
    let embedding: Embedding
    let groupNorm: GroupNorm
    let layerNorm: LayerNorm

    init(_ vs: VarStore) throws {
        let r = vs.root
        linear = try Linear(r / "linear", inFeatures: 7, outFeatures: 5)
        linearNoBias = try Linear(r / "linear_nobias", inFeatures: 5, outFeatures: 3, bias: false)
        conv = try Conv2d(r / "conv", inChannels: 4, outChannels: 6, kernelSize: 3, padding: 1)
        convGrouped = try Conv2d(r / "conv_grouped", inChannels: 4, outChannels: 8, kernelSize: 3, stride: 2,
                                 padding: 1, groups: 2)
        embedding = try Embedding(r / "embedding", count: 10, dim: 4)
        groupNorm = try GroupNorm(r / "group_norm", groups: 2, channels: 4)
        layerNorm = try LayerNorm(r / "layer_norm", 6)
    }
}

@Suite struct LayerTests {
    @Test func initialisationMatchesTorchNNForTheSameSeed() throws {
        let expected = try Fixtures.tensors("layers", "init")
        // A fresh generator seeded 0 replays torch.manual_seed(0)'s default generator.
        let vs = VarStore(generator: try Generator(seed: 0))
        _ = try Layers(vs)
        #expect(Set(vs.keys) == Set(expected.keys))
        for (key, t) in vs.named {
            try expectEqual(t, try expected.get(key), key)
        }
    }

    @Test func forwardMatchesTorchNN() throws {
        let f = try Fixtures.tensors("layers", "forward")
        let vs = VarStore(initialize: false)
        let l = try Layers(vs)
        try vs.load(f.filter { !$0.key.hasSuffix(".input") && !$0.key.hasSuffix(".output") })
        let cases: [(String, (Tensor) throws -> Tensor)] = [
            ("linear", l.linear.callAsFunction), ("linear_nobias", l.linearNoBias.callAsFunction),
            ("conv", l.conv.callAsFunction), ("conv_grouped", l.convGrouped.callAsFunction),
            ("embedding", l.embedding.callAsFunction), ("group_norm", l.groupNorm.callAsFunction),
            ("layer_norm", l.layerNorm.callAsFunction),
        ]
        for (name, forward) in cases {
            let y = try forward(try f.get("\(name).input"))
            try expectClose(y, try f.get("\(name).output"), atol: 1e-5, name)
        }
    }

    @Test func strictLoadReportsEveryProblemAtOnce() throws {
        let vs = VarStore()
        _ = try Linear(vs.root / "a", inFeatures: 3, outFeatures: 2)
        _ = try Linear(vs.root / "b", inFeatures: 3, outFeatures: 2)
        let state: [String: Tensor] = [
            "a.weight": try Tensor.zeros([2, 4]),  // mis-shaped
            "a.bias": try Tensor.zeros([2]),
            "b.weight": try Tensor.zeros([2, 3]),  // b.bias missing
            "c.weight": try Tensor.zeros([1]),  // unexpected
        ]
        let before = try vs["a.bias"]?.clone()
        do {
            try vs.load(state, source: "model.safetensors")
            Issue.record("a mismatched state dict loaded")
        } catch let error as StateDictError {
            #expect(error.missing == ["b.bias"])
            #expect(error.unexpected == ["c.weight"])
            #expect(error.misShaped.map(\.0) == ["a.weight"])
            #expect(error.description.contains("model.safetensors"))
            #expect(error.description.contains("a.weight: model [2, 3], file [2, 4]"))
        }
        // Nothing was copied by the failed load.
        if let before, let after = vs["a.bias"] { try expectEqual(after, before, "a.bias untouched") }
        // Non-strict load accepts missing/unexpected keys but never a wrong shape.
        #expect(throws: StateDictError.self) { try vs.load(state, strict: false) }
    }

    @Test func trainableSelectionAndRoundTripThroughSafetensors() throws {
        let vs = VarStore()
        _ = try Linear(vs.root / "base", inFeatures: 4, outFeatures: 4)
        _ = try Linear(vs.root / "adapter", inFeatures: 4, outFeatures: 2)
        try vs.setTrainable { $0.hasPrefix("adapter.") }
        #expect(vs.trainable.map(\.0) == ["adapter.weight", "adapter.bias"])
        #expect(vs["base.weight"]?.requiresGrad == false)

        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("m.safetensors")
        try vs.save(to: url)
        let other = VarStore(initialize: false)
        _ = try Linear(other.root / "base", inFeatures: 4, outFeatures: 4)
        _ = try Linear(other.root / "adapter", inFeatures: 4, outFeatures: 2)
        try other.load(safetensors: url)
        for (key, t) in vs.named {
            guard let loaded = other[key] else { Issue.record("missing \(key)"); continue }
            try expectEqual(try loaded.detach(), try t.detach(), key)
        }
    }
}
