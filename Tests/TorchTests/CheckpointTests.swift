// Gradient checkpointing (CTorch's checkpoint.cpp, Torch's `checkpoint`): the recomputation in backward gives
// PyTorch's gradients (reference/fixtures/ops.py, section "autograd"), replays the random draws of the first
// run, reaches parameters that no input leads to, and reports a failing recomputation as an error of backward().
import Testing
import TestSupport
@testable import Torch

/// Serialized: one test draws from the default generator.
@Suite("Gradient checkpointing", .serialized) struct CheckpointTests {
    static let blockParameters = ["cw", "cb", "gw", "gb", "qkv"]

    // convAttentionBlock (ConvAttentionBlock.swift) captures its parameters rather than taking them as inputs,
    // so their gradients can only come from the backward through the recomputation.

    private func leaves(_ f: [String: Tensor]) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in Self.blockParameters { out[name] = try f.get("block.p." + name).clone().requiresGrad(true) }
        return out
    }

    /// The fixture's input needs no gradient, so only the parameters inside lead anywhere: the output must
    /// still require grad (torch's reentrant checkpoint drops these gradients), and the gradients are PyTorch's
    /// to the fixture's own tolerance (1e-5, as `AutogradTests.convAttentionBlockGradients`).
    @Test func parametersInsideGetPyTorchsGradientsThoughNoInputRequiresGrad() throws {
        let f = try opsFixture("autograd")
        let p = try leaves(f)
        let x = try f.get("block.x")
        #expect(!x.requiresGrad)
        var runs = 0
        let loss = try checkpoint([x]) { inputs in
            runs += 1
            #expect(isGradEnabled == (runs > 1), "the first run records no graph, the recomputation does")
            return try convAttentionBlock(p, inputs[0])
        }
        #expect(runs == 1 && loss.requiresGrad)
        try expectClose(loss, try f.get("block.loss"), atol: 1e-5, "block loss")
        try loss.backward()
        #expect(runs == 2, "backward recomputes the block once")
        for name in Self.blockParameters {
            guard let grad = p[name]?.grad else { Issue.record("\(name) has no gradient"); continue }
            try expectClose(grad, try f.get("block.grad." + name), atol: 1e-5, "d block / d \(name)")
        }
    }

    /// Input gradients flow on to the outer graph and parameters accumulate across backward calls, bit for bit
    /// as without checkpointing.
    @Test func inputAndParameterGradientsEqualThePlainGraph() throws {
        let f = try opsFixture("autograd")
        func run(checkpointing: Bool) throws -> (x: Tensor, p: [String: Tensor]) {
            let p = try leaves(f)
            let x0 = try f.get("block.x").clone().requiresGrad(true)
            for _ in 0..<2 {  // two backward passes: the second accumulates onto the first
                let x = try x0 * 1.5  // a non-leaf input: its gradient must travel back through this op
                let y = checkpointing ? try checkpoint([x]) { try convAttentionBlock(p, $0[0]) } : try convAttentionBlock(p, x)
                try (y * 3).backward()
            }
            return (x0, p)
        }
        let plain = try run(checkpointing: false), checkpointed = try run(checkpointing: true)
        try expectEqual(try #require(checkpointed.x.grad), try #require(plain.x.grad), "d / d input")
        for name in Self.blockParameters {
            try expectEqual(try #require(checkpointed.p[name]?.grad), try #require(plain.p[name]?.grad), "d / d \(name)")
        }
    }

    /// Dropout from the default generator and from an explicit one: the recomputation draws the first run's
    /// masks (gradients equal the plain graph's), and backward leaves both generators where the forward did.
    @Test func recomputationReplaysTheRandomDraws() throws {
        let own = try Generator(seed: 3)
        func run(checkpointing: Bool) throws -> (grad: Tensor, next: Tensor, nextOwn: Tensor) {
            try manualSeed(21)
            try own.manualSeed(3)
            let w = try Tensor.linspace(-1, 1, steps: 64).view([8, 8]).requiresGrad(true)
            let x = try Tensor.linspace(0, 2, steps: 48).view([6, 8])
            let body: ([Tensor]) throws -> Tensor = {
                let a = try $0[0].dropout(p: 0.5, training: true)
                let b = try $0[0].dropout(p: 0.3, generator: own)
                return try F.linear(a + b, weight: w).tanh()
            }
            let y = checkpointing ? try checkpoint([x], preservingRNGOf: [own], body) : try body([x])
            try y.sum().backward()
            return (try #require(w.grad), try Tensor.rand([4]), try Tensor.rand([4], generator: own))
        }
        let plain = try run(checkpointing: false), checkpointed = try run(checkpointing: true)
        try expectEqual(checkpointed.grad, plain.grad, "gradient with dropout")
        try expectEqual(checkpointed.next, plain.next, "default generator after backward")
        try expectEqual(checkpointed.nextOwn, plain.nextOwn, "own generator after backward")
    }

    /// A Swift error in the recomputation is thrown by backward() as a TorchError, with an out-of-memory
    /// kept distinct; an error in the first run is rethrown as thrown.
    @Test func errorsInTheRecomputationSurfaceFromBackward() throws {
        struct Custom: Error {}
        let w = try Tensor.ones([3]).requiresGrad(true)
        func failingOnRecompute(_ error: Error) throws -> Tensor {
            var runs = 0
            return try checkpoint([try Tensor.ones([3])]) {
                runs += 1
                if runs > 1 { throw error }
                return try ($0[0] * w).sum()
            }
        }
        do {
            try failingOnRecompute(TorchError.outOfMemory("pretend")).backward()
            Issue.record("backward succeeded")
        } catch TorchError.outOfMemory(let message) {
            #expect(message.contains("pretend") && message.contains("recomputation"), "\(message)")
        }
        do {
            try failingOnRecompute(TorchError.invalidArgument("bad shape")).backward()
            Issue.record("backward succeeded")
        } catch let error as TorchError {
            #expect("\(error)".contains("bad shape"))
        }
        #expect(throws: Custom.self) { _ = try checkpoint([w]) { _ in throw Custom() } }
        // The engine is still usable afterwards.
        try (w * 2).sum().backward()
        #expect(try w.grad?.toArray(Float.self) == [2, 2, 2])
    }

    /// The closure (and what it captures) lives as long as the graph that may recompute it, no longer.
    @Test func theClosureIsReleasedWithTheGraph() throws {
        final class Witness {}
        weak var weakWitness: Witness?
        let w = try Tensor.ones([3]).requiresGrad(true)
        do {
            let witness = Witness()
            weakWitness = witness
            let y = try checkpoint([try Tensor.ones([3])]) { inputs in
                _ = witness
                return try (inputs[0] * w).sum()
            }
            #expect(weakWitness != nil)
            try y.backward()
        }
        #expect(weakWitness == nil, "the checkpoint's context leaked")
        // Without grad, the body runs plainly and nothing is kept.
        let y = try noGrad { try checkpoint([w]) { try $0[0] * 2 } }
        #expect(!y.requiresGrad)
    }
}
