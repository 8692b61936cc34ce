// Views, reshapes, joins, splits and indexing: exact against PyTorch's results for the same input.
import Testing
import TestSupport
@testable import Torch

@Suite("Shape ops match PyTorch exactly") struct ShapeOpsTests {
    @Test func reshapesAndViews() throws {
        let f = try opsFixture("shape")
        let x = try f.get("x"), s1 = try f.get("s1")
        let cases: [(String, Tensor)] = [
            ("reshape", try x.reshape([4, 6])), ("reshape_infer", try x.reshape([-1, 8])), ("view", try x.view([6, 4])),
            ("permute", try x.permute([2, 0, 1])), ("transpose", try x.transpose(0, 2)),
            ("permute_contiguous", try x.permute([1, 2, 0]).contiguous()),
            ("flatten", try x.flatten()), ("flatten_1", try x.flatten(from: 1)), ("flatten_01", try x.flatten(from: 0, to: 1)),
            ("unsqueeze_1", try x.unsqueeze(1)), ("unsqueeze_last", try x.unsqueeze(-1)),
            ("squeeze_1", try s1.squeeze(1)), ("squeeze_all", try s1.squeeze()),
            ("expand", try s1.expand([2, 3, 4, 5])), ("expand_keep", try s1.expand([-1, 2, -1, 3])),
            ("repeat", try x.repeated([2, 1, 3])), ("repeat_more", try x.repeated([2, 1, 1, 2])),
            ("flip", try x.flip([0, 2])), ("tril", try f.get("seven").tril()), ("triu_1", try f.get("seven").triu(1)),
        ]
        for (key, actual) in cases { try expectEqual(actual, try f.get(key), key) }
    }

    @Test func viewsShareStorageAndContiguousCopies() throws {
        let x = try opsFixture("shape").get("x").clone()
        let t = try x.transpose(0, 2)
        #expect(!t.isContiguous)
        #expect(t.strides == [1, 4, 12])
        let c = try t.contiguous()
        #expect(c.isContiguous)
        #expect(c.strides == [6, 2, 1])
        // A view of a non-contiguous tensor is refused, as in PyTorch; reshape copies instead.
        #expect(throws: TorchError.self) { try t.view([24]) }
        try expectEqual(try t.reshape([24]), try c.view([24]), "reshape of a transposed tensor")
        // Views alias their base: an in-place write shows through.
        let v = try x.view([6, 4])
        try x.fill_(1)
        #expect(try v.sum().item() == 24)
        #expect(try c.sum().item() != 24, "contiguous() of a non-contiguous tensor must copy")
    }

    @Test func joins() throws {
        let f = try opsFixture("shape")
        let x = try f.get("x"), y = try f.get("y")
        try expectEqual(try Tensor.cat([x, y], dim: 0), try f.get("cat_0"), "cat 0")
        try expectEqual(try Tensor.cat([x, y, x], dim: 2), try f.get("cat_2"), "cat 2")
        try expectEqual(try Tensor.stack([x, y], dim: 0), try f.get("stack_0"), "stack 0")
        try expectEqual(try Tensor.stack([x, y], dim: -1), try f.get("stack_last"), "stack -1")
    }

    /// The pieces PyTorch produced under `prefix_0`, `prefix_1`, ...
    private func pieces(_ f: [String: Tensor], _ prefix: String) throws -> [Tensor] {
        let n = f.keys.filter { $0.hasPrefix(prefix + "_") }.count
        return try (0..<n).map { try f.get("\(prefix)_\($0)") }
    }

    @Test func chunksAndSplits() throws {
        let f = try opsFixture("shape")
        let x = try f.get("x"), seven = try f.get("seven")
        let cases: [(String, [Tensor])] = [
            ("chunk3", try seven.chunk(3)), ("chunk4", try x.chunk(4, dim: 2)),
            ("split2", try seven.split(size: 2)), ("split13", try x.split(sizes: [1, 3], dim: -1)),
        ]
        for (prefix, actual) in cases {
            let expected = try pieces(f, prefix)
            #expect(!expected.isEmpty, "\(prefix): fixture has no pieces")
            #expect(actual.count == expected.count, "\(prefix): \(actual.count) pieces, PyTorch made \(expected.count)")
            for (i, (a, e)) in zip(actual, expected).enumerated() { try expectEqual(a, e, "\(prefix)[\(i)]") }
        }
        // PyTorch's conventions for an empty dimension: chunk gives `chunks` empty pieces, split one.
        let empty = try Tensor.zeros([0, 3])
        #expect(try empty.chunk(3).map(\.shape) == [[0, 3], [0, 3], [0, 3]])
        #expect(try empty.split(size: 2).map(\.shape) == [[0, 3]])
        #expect(throws: TorchError.self) { try seven.split(sizes: [3, 3], dim: 0) }
        #expect(throws: TorchError.self) { try seven.chunk(0) }
    }

    @Test func indexingSlicingGather() throws {
        let f = try opsFixture("shape")
        let x = try f.get("x"), idx = try f.get("idx"), seven = try f.get("seven")
        let cases: [(String, Tensor)] = [
            ("index_select", try x.indexSelect(dim: 2, index: idx)),
            ("index_select_0", try x.indexSelect(dim: 0, index: try idx.narrow(dim: 0, start: 0, length: 3).remainder(2))),
            ("slice", try x.slice(dim: 1, start: 1, end: 3)), ("slice_step", try x.slice(dim: -1, step: 2)),
            ("slice_neg", try x.slice(dim: 1, start: -2)), ("slice_mid_step", try seven.slice(dim: 0, start: 1, end: 6, step: 2)),
            ("narrow", try x.narrow(dim: 2, start: 1, length: 2)), ("narrow_neg", try x.narrow(dim: -1, start: -3, length: 2)),
            ("select", try x.select(dim: 1, index: 2)), ("select_neg", try x.select(dim: -1, index: -1)),
            ("gather", try x.gather(dim: 2, index: try f.get("gidx"))),
        ]
        for (key, actual) in cases { try expectEqual(actual, try f.get(key), key) }
        // narrow checks its range like torch.narrow instead of clamping like a slice.
        #expect(throws: TorchError.self) { try x.narrow(dim: 2, start: 3, length: 2) }
    }

    @Test func sizeReadsNegativeDims() throws {
        let x = try Tensor.zeros([2, 3, 4])
        #expect(x.size(0) == 2 && x.size(-1) == 4 && x.size(-3) == 2)
        #expect(x.rank == 3 && x.count == 24 && x.byteCount == 96)
    }
}
