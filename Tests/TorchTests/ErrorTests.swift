// libtorch's failures surface as thrown Swift errors carrying libtorch's message, and the process
// (and libtorch) keep working afterwards.
import Testing
import TestSupport
@testable import Torch

/// The message of the out-of-memory error that allocating 4 EiB of float32 throws (2^60 elements), which
/// names what went wrong ("can't allocate memory"); records an issue for anything else.
func allocatingFourEiBMessage(sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    do {
        _ = try Tensor.empty([1 << 40, 1 << 20])
        Issue.record("allocating 4 EiB succeeded", sourceLocation: sourceLocation)
    } catch TorchError.outOfMemory(let message) {
        #expect(message.contains("can't allocate memory"), "message: \(message)", sourceLocation: sourceLocation)
        return message
    } catch {
        Issue.record("expected TorchError.outOfMemory, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

@Suite("libtorch errors are Swift errors") struct ErrorTests {
    /// The message of the `TorchError` that `body` throws; records an issue when it throws nothing
    /// or something else.
    private func torchMessage(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        do {
            try body()
            Issue.record("expected a TorchError, nothing was thrown", sourceLocation: sourceLocation)
        } catch let error as TorchError {
            guard case .torch(let message) = error else {
                Issue.record("expected TorchError.torch, got \(error)", sourceLocation: sourceLocation)
                return nil
            }
            return message
        } catch {
            Issue.record("expected a TorchError, got \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    /// libtorch's messages without the C++ stack trace that c10::Error::what() appends.
    private func expectNoBacktrace(_ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!message.contains("Exception raised from"), "backtrace in: \(message)", sourceLocation: sourceLocation)
        #expect(!message.contains("frame #"), "backtrace in: \(message)", sourceLocation: sourceLocation)
    }

    /// Ordinary work still succeeds: nothing was left broken by the failure before.
    private func expectStillWorking(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let a = try Tensor([Float(1), 2, 3, 4, 5, 6], shape: [2, 3])
        let b = try Tensor([Float(1), 0, 0, 1, 1, 1], shape: [3, 2])
        #expect(try a.matmul(b).toArray(Float.self) == [4, 5, 10, 11], sourceLocation: sourceLocation)
    }

    @Test func shapeMismatchInMatmulThrowsLibtorchsMessage() throws {
        let a = try Tensor.ones([2, 3]), b = try Tensor.ones([4, 5])
        let message = torchMessage { _ = try a.matmul(b) }
        #expect(message?.contains("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)") == true,
                "message: \(message ?? "none")")
        if let message { expectNoBacktrace(message) }
        try expectStillWorking()
        // Operators throw too: one `try` covers the expression and the error comes out of it.
        #expect(throws: TorchError.self) { _ = try a + b }
        try expectStillWorking()
    }

    @Test func opRejectingADtypeThrows() throws {
        // Normal sampling is defined for floating types only.
        let message = torchMessage { _ = try Tensor.randn([3], dtype: .int64) }
        #expect(message?.contains("not implemented for 'Long'") == true, "message: \(message ?? "none")")
        if let message { expectNoBacktrace(message) }
        // Mixed dtypes in a matrix product.
        let m = torchMessage { _ = try Tensor.ones([2, 2]).matmul(try Tensor.ones([2, 2], dtype: .float64)) }
        #expect(m?.contains("dtype") == true, "message: \(m ?? "none")")
        // Raw bytes that do not fill the shape.
        let bytes: [UInt8] = [0, 0, 0, 0, 0, 0]
        let raw = bytes.withUnsafeBytes { raw in
            torchMessage { _ = try Tensor(bytes: raw, shape: [2], dtype: .float32) }
        }
        #expect(raw?.contains("byte count 6 does not match") == true, "message: \(raw ?? "none")")
        try expectStillWorking()
    }

    @Test func outOfRangeDimThrows() throws {
        let x = try Tensor.zeros([2, 3])
        let message = torchMessage { _ = try x.sum(dims: [5]) }
        #expect(message?.contains("Dimension out of range") == true, "message: \(message ?? "none")")
        if let message { expectNoBacktrace(message) }
        #expect(throws: TorchError.self) { try x.softmax(dim: 2) }
        #expect(throws: TorchError.self) { try x.transpose(0, -3) }
        #expect(throws: TorchError.self) { try x.unsqueeze(4) }
        // Swift-side helpers that read a dimension's size check it too, instead of trapping.
        #expect(throws: TorchError.self) { try x.chunk(2, dim: 2) }
        #expect(throws: TorchError.self) { try x.split(size: 1, dim: -3) }
        #expect(throws: TorchError.self) { try x.split(sizes: [1, 1], dim: 7) }
        try expectStillWorking()
    }

    @Test func indexOutOfRangeThrows() throws {
        let x = try Tensor.zeros([2, 3])
        let select = torchMessage { _ = try x.select(dim: 1, index: 3) }
        #expect(select?.contains("out of range") == true, "message: \(select ?? "none")")
        let index = try Tensor([Int64(0), 5])
        let indexSelect = torchMessage { _ = try x.indexSelect(dim: 1, index: index) }
        // CPU index_select words it as "INDICES element is out of DATA bounds, id=5 axis_dim=3".
        #expect(indexSelect?.contains("out of DATA bounds, id=5") == true, "message: \(indexSelect ?? "none")")
        let gather = torchMessage { _ = try x.gather(dim: 1, index: try Tensor([Int64(0), 3, 1, 1], shape: [2, 2])) }
        #expect(gather?.contains("out of bounds") == true, "message: \(gather ?? "none")")
        let embedding = torchMessage { _ = try F.embedding(try Tensor([Int64(2)]), weight: x) }
        #expect(embedding?.contains("out of range") == true, "message: \(embedding ?? "none")")
        for m in [select, indexSelect, gather, embedding].compactMap({ $0 }) { expectNoBacktrace(m) }
        try expectStillWorking()
    }

    @Test func backwardWithoutAGradientThrows() throws {
        let w = try Tensor.ones([3]).requiresGrad(true)
        let y = try w * 2
        let nonScalar = torchMessage { try y.backward() }
        #expect(nonScalar?.contains("grad can be implicitly created only for scalar outputs") == true,
                "message: \(nonScalar ?? "none")")
        // With an explicit gradient the same call works.
        try y.backward(gradient: try Tensor.ones([3]))
        #expect(try w.grad?.toArray(Float.self) == [2, 2, 2])
        let noGraph = torchMessage { try Tensor.ones([1]).sum().backward() }
        #expect(noGraph?.contains("does not require grad") == true, "message: \(noGraph ?? "none")")
        // requiresGrad on a non-leaf is refused too.
        #expect(throws: TorchError.self) { try y.requiresGrad(false) }
        try expectStillWorking()
    }

    @Test func absurdAllocationIsACatchableOutOfMemoryError() throws {
        // 2^60 float32 elements: 4 EiB. libtorch's CPU allocator reports it as a c10::Error ("can't
        // allocate memory"); the shim classifies that as out-of-memory, the case callers handle.
        if let message = allocatingFourEiBMessage() { expectNoBacktrace(message) }
        #expect(throws: TorchError.self) { try Tensor.zeros([1 << 30, 1 << 30]) }
        try expectStillWorking()
    }

    /// Calls that PyTorch rejects (some only in its Python layer): each must throw, none may take the
    /// process down.
    @Test func invalidCallsThrowInsteadOfCrashing() throws {
        let x = try Tensor.randn([2, 3, 4, 4], generator: try Generator(seed: 0))
        let ints = try Tensor([Int64(5), -3, 7])
        let calls: [(String, () throws -> Void)] = [
            ("integer floor division by zero", { _ = try ints.floorDivide(0) }),
            ("integer remainder by zero", { _ = try ints.remainder(0) }),
            ("integer to a negative power", { _ = try ints.pow(-1) }),
            ("integer arange with a fractional step", { _ = try Tensor.arange(0, 1, step: 0.5, dtype: .int64) }),
            ("arange with a zero step", { _ = try Tensor.arange(0, 10, step: 0) }),
            ("slice step 0", { _ = try x.slice(dim: 1, step: 0) }),
            ("topk beyond the size", { _ = try ints.topk(5) }),
            ("negative embedding index", { _ = try F.embedding(try Tensor([Int64(-1)]), weight: try Tensor.ones([3, 2])) }),
            ("interpolate to an empty size", { _ = try x.interpolate(size: (0, 3), mode: .bilinear) }),
            ("antialias with nearest", { _ = try x.interpolate(size: (2, 2), mode: .nearest, antialias: true) }),
            ("kernel larger than the input", { _ = try F.conv2d(x, weight: try Tensor.ones([2, 3, 5, 5])) }),
            ("reflect padding wider than the input", { _ = try x.pad([4, 4], mode: .reflect) }),
            ("negative probability", { _ = try Tensor([Float(0.5), -1]).multinomial(1) }),
            ("all-zero probabilities", { _ = try Tensor([Float(0), 0]).multinomial(1) }),
            ("too many samples without replacement", { _ = try Tensor([Float(0.5), 0.5]).multinomial(3) }),
            ("randint with low >= high", { _ = try Tensor.randint(3, 1, [2]) }),
            ("group count not dividing channels", { _ = try F.groupNorm(x, groups: 2, weight: nil, bias: nil) }),
            ("layer norm over a wrong shape", { _ = try F.layerNorm(x, normalizedShape: [3], weight: nil, bias: nil) }),
            ("cat of nothing", { _ = try Tensor.cat([]) }),
            ("stack of nothing", { _ = try Tensor.stack([]) }),
            ("cat of mismatched shapes", { _ = try Tensor.cat([x, try Tensor.ones([2, 3])]) }),
            ("bmm of mismatched batches", { _ = try Tensor.ones([2, 3, 4]).bmm(try Tensor.ones([3, 4, 5])) }),
            ("two inferred dims", { _ = try x.view([-1, -1]) }),
            ("repeat with too few dims", { _ = try x.repeated([2]) }),
            ("duplicate reduction dims", { _ = try x.sum(dims: [1, 1]) }),
            ("duplicate permute dims", { _ = try x.permute([0, 0, 1, 2]) }),
            ("expand to a different size", { _ = try x.expand([3, 3, 4, 4]) }),
            ("mse of different sizes", { _ = try F.mseLoss(try Tensor.ones([3]), try Tensor.ones([4])) }),
            ("cross entropy target out of range", {
                _ = try F.crossEntropy(try Tensor.ones([2, 3]), try Tensor([Int64(0), 5])) }),
            ("dropout probability above 1", { _ = try x.dropout(p: 1.5, training: true) }),
            ("negative linspace steps", { _ = try Tensor.linspace(0, 1, steps: -1) }),
            ("negative randperm", { _ = try Tensor.randperm(-3) }),
            ("negative shape", { _ = try Tensor.zeros([2, -1]) }),
            ("item of many elements", { _ = try x.item() }),
            ("integer tensor requiring grad", { try ints.requiresGrad(true) }),
            ("generator state of the wrong size", { try Generator(seed: 1).setState(try Tensor.zeros([3], dtype: .uint8)) }),
            ("copy between different shapes", { try Tensor.zeros([2]).copy_(try Tensor.ones([3])) }),
        ]
        for (label, call) in calls {
            #expect(throws: TorchError.self, "\(label)") { try call() }
        }
        try expectStillWorking()
    }

    @Test func errorsAreEquatableAndDescribed() {
        #expect(TorchError.torch("x") == .torch("x"))
        #expect(TorchError.torch("x") != .outOfMemory("x"))
        #expect(TorchError.outOfMemory("4 EiB").description.contains("out of memory"))
    }
}
