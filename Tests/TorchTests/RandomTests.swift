import Testing
import TestSupport
@testable import Torch

@Suite struct RandomTests {
    @Test func randnMatchesPyTorchForTheSameSeed() throws {
        let f = try Fixtures.tensors("ops", "random")
        let g = try Generator(seed: 1234)
        try expectEqual(try Tensor.randn([3, 5, 7], generator: g), try f.get("randn"), "randn")
        try expectEqual(try Tensor.rand([17], generator: g), try f.get("rand_after"), "rand after randn")
        try expectEqual(try Tensor.randint(0, 1000, [11], generator: g), try f.get("randint_after"), "randint")
        // Large draws use the vectorised path in PyTorch (>= 16 elements); check both sizes.
        let g2 = try Generator(seed: 7)
        try expectEqual(try Tensor.randn([4], generator: g2), try f.get("randn_small"), "randn small")
        try expectEqual(try Tensor.randn([2, 4, 8, 8], dtype: .float64, generator: g2), try f.get("randn_f64"), "randn f64")
    }

    @Test func generatorStateRoundTrips() throws {
        let g = try Generator(seed: 99)
        _ = try Tensor.randn([10], generator: g)
        let state = try g.state()
        let a = try Tensor.randn([32], generator: g)
        try g.setState(state)
        let b = try Tensor.randn([32], generator: g)
        try expectEqual(a, b, "replayed draw")
    }
}
