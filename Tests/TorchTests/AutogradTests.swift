// Gradients through libtorch's autograd, compared with PyTorch's for the same composite functions
// (reference/fixtures/ops.py, section "autograd").
import Testing
import TestSupport
@testable import Torch

@Suite("Autograd gradients match PyTorch's") struct AutogradTests {
    static let mlpParameters = ["w1", "b1", "gn_w", "gn_b", "w2", "b2", "ln_w", "ln_b"]
    static let blockParameters = ["cw", "cb", "gw", "gb", "qkv"]

    /// Fresh leaf copies of the fixture's parameters under `prefix`, requiring gradients.
    private func leaves(_ f: [String: Tensor], _ prefix: String, _ names: [String]) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in names { out[name] = try f.get(prefix + name).clone().requiresGrad(true) }
        return out
    }

    /// linear → group_norm → silu → linear → layer_norm → softmax → mse, as in the fixture script.
    private func mlp(_ p: [String: Tensor], _ x: Tensor, _ target: Tensor) throws -> Tensor {
        var h = try F.linear(x, weight: p.get("w1"), bias: p.get("b1"))
        h = try F.groupNorm(h, groups: 2, weight: p.get("gn_w"), bias: p.get("gn_b"))
        h = try h.silu()
        h = try F.linear(h, weight: p.get("w2"), bias: p.get("b2"))
        h = try F.layerNorm(h, normalizedShape: [5], weight: p.get("ln_w"), bias: p.get("ln_b"))
        h = try h.softmax(dim: -1)
        return try F.mseLoss(h, target)
    }

    @Test func mlpLossAndEveryLeafGradient() throws {
        let f = try opsFixture("autograd")
        let p = try leaves(f, "p.", Self.mlpParameters)
        let x = try f.get("x").clone().requiresGrad(true)
        let loss = try mlp(p, x, try f.get("target1"))
        #expect(loss.requiresGrad && !loss.isLeaf)
        try expectClose(loss, try f.get("loss1"), atol: 1e-6, "loss")
        try loss.backward()
        for name in Self.mlpParameters {
            guard let grad = p[name]?.grad else { Issue.record("\(name) has no gradient"); continue }
            try expectClose(grad, try f.get("grad1." + name), atol: 1e-6, "d loss / d \(name)")
        }
        guard let gx = x.grad else { Issue.record("the input has no gradient"); return }
        try expectClose(gx, try f.get("grad1.x"), atol: 1e-6, "d loss / d x")
    }

    @Test func gradientsAccumulateOverTwoBackwardCalls() throws {
        let f = try opsFixture("autograd")
        let p = try leaves(f, "p.", Self.mlpParameters)
        let x = try f.get("x")
        try mlp(p, x, try f.get("target1")).backward()
        let second = try mlp(p, x, try f.get("target2"))
        try expectClose(second, try f.get("loss2"), atol: 1e-6, "second loss")
        try second.backward()
        for name in Self.mlpParameters {
            guard let grad = p[name]?.grad else { Issue.record("\(name) has no gradient"); continue }
            try expectClose(grad, try f.get("grad12." + name), atol: 1e-6, "accumulated d/d \(name)")
        }
        // The input was not a leaf requiring grad: it gets none.
        #expect(x.grad == nil)
    }

    @Test func retainGraphAllowsASecondBackwardThroughTheSameGraph() throws {
        let f = try opsFixture("autograd")
        let p = try leaves(f, "p.", Self.mlpParameters)
        let loss = try mlp(p, try f.get("x"), try f.get("target1"))
        try loss.backward(retainGraph: true)
        try loss.backward()
        for name in Self.mlpParameters {
            guard let grad = p[name]?.grad else { Issue.record("\(name) has no gradient"); continue }
            try expectClose(grad, try f.get("grad1." + name) * 2, atol: 2e-6, "twice d/d \(name)")
        }
        // Without retainGraph the graph's buffers are freed: a third pass is an error, not a crash.
        #expect(throws: TorchError.self) { try loss.backward() }
    }

    @Test func convAttentionBlockGradients() throws {
        let f = try opsFixture("autograd")
        let p = try leaves(f, "block.p.", Self.blockParameters)
        let loss = try convAttentionBlock(p, try f.get("block.x"))
        try expectClose(loss, try f.get("block.loss"), atol: 1e-5, "block loss")
        try loss.backward()
        for name in Self.blockParameters {
            guard let grad = p[name]?.grad else { Issue.record("\(name) has no gradient"); continue }
            try expectClose(grad, try f.get("block.grad." + name), atol: 1e-5, "d block / d \(name)")
        }
    }

    @Test func zeroGradDropsTheGradient() throws {
        let w = try Tensor([Float(1), 2, 3]).requiresGrad(true)
        try (w * w).sum().backward()
        #expect(try w.grad?.toArray(Float.self) == [2, 4, 6])
        try w.zeroGrad()
        #expect(w.grad == nil)
        // After zeroGrad the next backward starts from nothing rather than accumulating.
        try (w * 3).sum().backward()
        #expect(try w.grad?.toArray(Float.self) == [3, 3, 3])
    }

    @Test func noGradRecordsNoGraph() throws {
        let w = try Tensor([Float(1), 2, 3]).requiresGrad(true)
        #expect(isGradEnabled)
        let y = try noGrad {
            #expect(!isGradEnabled)
            return try (w * 2).exp().sum()
        }
        #expect(isGradEnabled, "noGrad must restore the mode")
        #expect(!y.requiresGrad)
        #expect(throws: TorchError.self) { try y.backward() }
        // Grad mode comes back even when the body throws.
        #expect(throws: TorchError.self) {
            try noGrad { _ = try w.matmul(try Tensor.zeros([5, 5])) }
        }
        #expect(isGradEnabled)
        #expect(try (w * 2).requiresGrad)
    }

    @Test func detachCutsTheGraph() throws {
        let w = try Tensor([Float(1), 2, 3]).requiresGrad(true)
        let y = try w * w
        let d = try y.detach()
        #expect(y.requiresGrad && !d.requiresGrad && d.isLeaf)
        try expectEqual(d, try y.detach(), "detached values")
        // Only the path through y carries gradient; the detached factor is a constant.
        try (y * d).sum().backward()
        // d(y·d)/dw = d · 2w = w² · 2w
        #expect(try w.grad?.toArray(Float.self) == [2, 16, 54])
        // A detached tensor shares storage with the original.
        let base = try Tensor([Float(0), 0]).requiresGrad(true)
        let alias = try base.detach()
        try alias.fill_(5)
        #expect(try base.toArray(Float.self) == [5, 5])
    }
}
