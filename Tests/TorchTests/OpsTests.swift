// Elementwise math, linear algebra, reductions, dtype conversions, arrays, sampling and losses,
// each compared with PyTorch's output for the same inputs (reference/fixtures/ops.py).
import Testing
import TestSupport
@testable import Torch

/// The tensors of `.fixtures/ops/<area>.safetensors`.
func opsFixture(_ area: String) throws -> [String: Tensor] { try Fixtures.tensors("ops", area) }

// Same kernels on the same inputs: fp32 elementwise results agree to ~1 ulp of the values involved.
private let elementwiseTolerance = 1e-6

@Suite("Ops match PyTorch on the same inputs") struct OpsTests {
    @Test func arithmeticBroadcastsLikePyTorch() throws {
        let f = try opsFixture("elementwise")
        let a = try f.get("a"), b = try f.get("b"), c = try f.get("c")
        let cases: [(String, Tensor)] = [
            ("add", try a + b), ("sub", try a - b), ("mul", try a * b), ("div", try a / b),
            ("add_col", try a + c), ("mul_outer", try c * b),
            ("add_s", try a + 2.5), ("sub_s", try a - 2.5), ("mul_s", try a * 2.5), ("div_s", try a / 2.5),
            ("s_add", try 2.5 + a), ("s_sub", try 2.5 - a), ("s_mul", try 2.5 * a), ("s_div", try 2.5 / b),
            ("neg", try -a),
        ]
        for (key, actual) in cases {
            #expect(actual.dtype == .float32, "\(key)")
            try expectClose(actual, try f.get(key), atol: elementwiseTolerance, key)
        }
        #expect(try (a + c).shape == [3, 4])
        #expect(try (c * b).shape == [3, 4])
    }

    @Test func integerTensorsWithWholeScalarsKeepTheirDtype() throws {
        let f = try opsFixture("elementwise")
        let it = try f.get("it")
        #expect(it.dtype == .int64)
        let cases: [(String, Tensor)] = [
            ("it_add", try it + 3), ("it_sub", try it - 4), ("it_mul", try it * 2), ("it_rem", try it.remainder(3)),
            ("it_floordiv", try it.floorDivide(2)), ("it_pow", try it.pow(2)), ("it_s_sub", try 3 - it),
            ("it_s_mul", try 2 * it), ("it_div", try it / 2), ("it_add_frac", try it + 0.5),
            ("it_mul_frac", try it * 1.5), ("it_gt", try it.gt(2)), ("bool_add", try it.gt(0) + 1),
        ]
        // expectEqual also compares dtypes: int64 where PyTorch keeps it, float32 where it promotes.
        for (key, actual) in cases { try expectEqual(actual, try f.get(key), key) }
    }

    @Test func unaryMathMatches() throws {
        let f = try opsFixture("elementwise")
        let a = try f.get("a"), b = try f.get("b"), pos = try f.get("pos")
        let cases: [(String, Tensor)] = [
            ("exp", try a.exp()), ("log", try pos.log()), ("sqrt", try pos.sqrt()), ("rsqrt", try pos.rsqrt()),
            ("pow_s", try pos.pow(2.5)), ("pow_t", try pos.pow(try f.get("expo"))),
            ("sin", try (a * 3).sin()), ("cos", try (a * 3).cos()), ("tanh", try a.tanh()),
            ("sigmoid", try a.sigmoid()), ("abs", try a.abs()), ("erf", try a.erf()), ("square", try a.square()),
            ("reciprocal", try b.reciprocal()), ("maximum", try a.maximum(b)), ("minimum", try a.minimum(b)),
        ]
        for (key, actual) in cases {
            let expected = try f.get(key)
            // exp and pow reach ~20: allow one float32 ulp at that magnitude.
            let scale = Swift.max(1, try expected.abs().max().item())
            try expectClose(actual, expected, atol: elementwiseTolerance * scale, key)
        }
    }

    @Test func comparisonsGiveBoolTensors() throws {
        let f = try opsFixture("elementwise")
        let x = try f.get("ints_x"), y = try f.get("ints_y")
        let cases: [(String, Tensor)] = [
            ("eq", try x.eq(y)), ("ne", try x.ne(y)), ("lt", try x.lt(y)), ("le", try x.le(y)),
            ("gt", try x.gt(y)), ("ge", try x.ge(y)),
            ("eq_s", try x.eq(1)), ("lt_s", try x.lt(0)), ("ge_s", try x.ge(-1)),
        ]
        for (key, actual) in cases { try expectEqual(actual, try f.get(key), key) }
        // The inputs were drawn from few integers so that ties exist: eq must not be all false.
        #expect(try x.eq(y).sum().item() > 0)
    }

    @Test func whereAndClamp() throws {
        let f = try opsFixture("elementwise")
        let a = try f.get("a"), b = try f.get("b")
        try expectEqual(try Tensor.where(try a.gt(0), a, b), try f.get("where"), "where")
        try expectEqual(try a.clamp(min: -0.5, max: 0.5), try f.get("clamp"), "clamp")
        try expectEqual(try a.clamp(min: -0.25), try f.get("clamp_min"), "clamp min")
        try expectEqual(try a.clamp(max: 0.75), try f.get("clamp_max"), "clamp max")
    }

    @Test func halfPrecisionArithmeticKeepsPyTorchsPromotion() throws {
        let f = try opsFixture("elementwise")
        let a = try f.get("a"), b = try f.get("b")
        let half = try a.to(.float16)
        try expectEqual(half, try f.get("f16_a"), "f32 -> f16")
        // A Double scalar does not promote a float16 tensor (PyTorch's wrapped-number rule).
        try expectEqual(try half + 2.5, try f.get("f16_add_s"), "f16 + scalar")
        try expectEqual(try half * b.to(.float16), try f.get("f16_mul"), "f16 * f16")
        try expectEqual(try a.to(.bfloat16) * 1.1, try f.get("bf16_mul_s"), "bf16 * scalar")
    }

    @Test func matmulFamily() throws {
        let f = try opsFixture("linalg")
        let m1 = try f.get("m1"), bm1 = try f.get("bm1"), bm2 = try f.get("bm2"), bias = try f.get("bias_in")
        let cases: [(String, Tensor)] = [
            ("matmul", try m1.matmul(try f.get("m2"))),
            ("matmul_batched", try bm1.matmul(try f.get("m2"))),
            ("matmul_broadcast", try f.get("bc1").matmul(try f.get("bc2"))),
            ("matmul_vec", try m1.matmul(try f.get("vec"))),
            ("bmm", try bm1.bmm(bm2)),
            ("baddbmm", try bias.baddbmm(bm1, bm2, beta: 0.5, alpha: 2)),
            ("baddbmm_beta0", try bias.baddbmm(bm1, bm2, beta: 0, alpha: 0.125)),
            ("baddbmm_bcast", try bias.narrow(dim: 0, start: 0, length: 1).baddbmm(bm1, bm2)),
            ("linear", try F.linear(try f.get("lin_x"), weight: try f.get("lin_w"), bias: try f.get("lin_b"))),
            ("linear_nobias", try F.linear(try f.get("lin_x"), weight: try f.get("lin_w"))),
        ]
        // Sums of 5-6 products of N(0,1) values: a few ulps of values up to ~10.
        for (key, actual) in cases { try expectClose(actual, try f.get(key), atol: 1e-5, key) }
    }

    @Test func reductionsWithDimsAndKeepDim() throws {
        let f = try opsFixture("reduce")
        let x = try f.get("x")
        let floats: [(String, Tensor)] = [
            ("sum", try x.sum()), ("sum_1", try x.sum(dims: [1])), ("sum_1_keep", try x.sum(dims: [1], keepDim: true)),
            ("sum_02", try x.sum(dims: [0, 2])), ("mean", try x.mean()), ("mean_neg", try x.mean(dims: [-1])),
            ("mean_02_keep", try x.mean(dims: [0, 2], keepDim: true)), ("var", try x.variance()),
            ("var_1_pop_keep", try x.variance(dims: [1], correction: 0, keepDim: true)),
            ("var_02", try x.variance(dims: [0, 2])), ("max", try x.max()), ("min", try x.min()),
            ("max_1_values", try x.max(dim: 1).values), ("min_2_values", try x.min(dim: 2, keepDim: true).values),
            ("norm", try x.norm()), ("norm_l1_2", try x.norm(p: 1, dims: [2])),
            ("norm_inf_1_keep", try x.norm(p: .infinity, dims: [1], keepDim: true)),
            ("norm_2_01", try x.norm(dims: [0, 1])), ("cumsum", try x.cumsum(dim: 1)),
            ("cumprod", try f.get("cp").cumprod(dim: 1)), ("cumprod_0", try f.get("cp").cumprod(dim: 0)),
            ("topk_values", try x.topk(3).values), ("topk_small_values", try x.topk(2, dim: 1, largest: false).values),
            ("sort_values", try x.sort(dim: 1, descending: true).values),
        ]
        for (key, actual) in floats { try expectClose(actual, try f.get(key), atol: 1e-5, key) }
        // Indices are exact, ties included (argmax returns the first maximum, like PyTorch).
        let indices: [(String, Tensor)] = [
            ("max_1_indices", try x.max(dim: 1).indices), ("min_2_indices", try x.min(dim: 2, keepDim: true).indices),
            ("argmax_2", try x.argmax(dim: 2)), ("argmax_0_keep", try x.argmax(dim: 0, keepDim: true)),
            ("argmax_tie", try f.get("tie").argmax(dim: 1)), ("topk_indices", try x.topk(3, dim: -1).indices),
            ("topk_small_indices", try x.topk(2, dim: 1, largest: false).indices),
            ("sort_indices", try x.sort(dim: 1, descending: true).indices),
        ]
        for (key, actual) in indices { try expectEqual(actual, try f.get(key), key) }
    }

    @Test func dtypeConversionsRoundLikePyTorch() throws {
        let f = try opsFixture("dtype")
        let x = try f.get("x"), fine = try f.get("fine"), ints = try f.get("ints")
        let cases: [(String, Tensor)] = [
            ("f16", try x.to(.float16)), ("bf16", try x.to(.bfloat16)), ("f64", try x.to(.float64)),
            ("i64", try x.to(.int64)), ("i32", try x.to(.int32)), ("u8", try x.abs().clamp(max: 255).to(.uint8)),
            ("bool", try (x.round().remainder(3)).to(.bool)),
            ("fine_f16", try fine.to(.float16)), ("fine_bf16", try fine.to(.bfloat16)),
            ("f16_back", try x.to(.float16).to(.float32)), ("bf16_back", try x.to(.bfloat16).to(.float32)),
            ("ints_f32", try ints.to(.float32)), ("ints_f16", try ints.to(.float16)), ("ints_i8", try ints.to(.int8)),
            ("bf16_to_f16", try x.to(.bfloat16).to(.float16)),
        ]
        for (key, actual) in cases { try expectEqual(actual, try f.get(key), key) }
        // Rounding really happened: the half-precision round trip differs from the input.
        #expect(try maxAbsDiff(try x.to(.bfloat16).to(.float32), x) > 0)
    }

    @Test func creationMatchesPyTorch() throws {
        let f = try opsFixture("creation")
        let cases: [(String, Tensor)] = [
            // Whole bounds give int64 and a fractional one float32, as PyTorch infers from Python numbers.
            ("arange_5", try Tensor.arange(5)), ("arange_step", try Tensor.arange(2, 11, step: 3)),
            ("arange_frac", try Tensor.arange(0, 1, step: 0.25)),
            ("arange_neg_f64", try Tensor.arange(1, -1, step: -0.3, dtype: .float64)),
            ("arange_f32_whole", try Tensor.arange(3, dtype: .float32)),
            ("linspace", try Tensor.linspace(-1, 1, steps: 7)),
            ("linspace_f64", try Tensor.linspace(0, 10, steps: 4, dtype: .float64)),
            ("full", try Tensor.full([2, 3], 1.5)), ("full_i32", try Tensor.full([4], 7, dtype: .int32)),
            ("ones_bf16", try Tensor.ones([2, 2], dtype: .bfloat16)), ("zeros_bool", try Tensor.zeros([3], dtype: .bool)),
        ]
        for (key, actual) in cases { try expectEqual(actual, try f.get(key), key) }
        let e = try Tensor.empty([2, 0, 3])
        #expect(e.shape == [2, 0, 3] && e.count == 0 && e.dtype == .float32)
        #expect(try Tensor.zeros(like: try Tensor.ones([2], dtype: .float16)).dtype == .float16)
    }

    @Test func channelsLastKeepsValues() throws {
        let x = try opsFixture("conv").get("x")
        let cl = try x.channelsLast()
        let (clIsCL, clIsContiguous, xIsCL) = (cl.isChannelsLast, cl.isContiguous, x.isChannelsLast)
        #expect(cl.shape == x.shape)
        #expect(clIsCL && !clIsContiguous && !xIsCL)
        #expect(cl.strides == [x.size(1) * x.size(2) * x.size(3), 1, x.size(3) * x.size(1), x.size(1)])
        try expectEqual(cl, x, "channels-last values")
        #expect(try cl.toArray(Float.self) == x.toArray(Float.self))
        let back = try cl.contiguous()
        #expect(back.isContiguous)
        try expectEqual(back, x, "back to contiguous")
    }

    @Test func mseLossReductions() throws {
        let f = try opsFixture("loss")
        let p = try f.get("pred"), t = try f.get("target")
        try expectClose(try F.mseLoss(p, t), try f.get("mse_mean"), atol: 1e-6, "mean")
        try expectClose(try F.mseLoss(p, t, reduction: .sum), try f.get("mse_sum"), atol: 1e-4, "sum")
        try expectClose(try F.mseLoss(p, t, reduction: .none), try f.get("mse_none"), atol: 1e-6, "none")
    }

    @Test func dropoutIdentityAndSeededMask() throws {
        let f = try opsFixture("loss")
        let x = try f.get("dropout_x")
        try expectEqual(try x.dropout(p: 0, training: true), x, "p = 0")
        try expectEqual(try x.dropout(p: 0.5, training: false), x, "eval mode")
        // libtorch's default CPU generator, seeded like torch.manual_seed: the same masks, call after call.
        try manualSeed(4321)
        let d1 = try x.dropout(p: 0.3, training: true)
        let d2 = try x.dropout(p: 0.5, training: true)
        try expectClose(d1, try f.get("dropout_p03"), atol: 1e-6, "p = 0.3")
        try expectClose(d2, try f.get("dropout_p05_next"), atol: 1e-6, "p = 0.5, next draw")
        let dropped = try d1.eq(0).to(.float32).mean().item()
        #expect(dropped > 0.2 && dropped < 0.4, "fraction zeroed \(dropped)")
    }

    @Test func samplingWithAGeneratorMatchesPyTorch() throws {
        let f = try opsFixture("sampling")
        let probs = try f.get("probs")
        let g = try Generator(seed: 5)
        let noRep = try probs.multinomial(4, generator: g)
        try expectEqual(noRep, try f.get("multinomial_norep"), "without replacement")
        try expectEqual(try probs.multinomial(10, replacement: true, generator: g), try f.get("multinomial_rep"),
                        "with replacement")
        try expectEqual(try probs.select(dim: 0, index: 0).multinomial(3, generator: g), try f.get("multinomial_1d"), "1-D")
        // Row 1 gives category 2 zero probability: it must never be drawn.
        #expect(try !noRep.select(dim: 0, index: 1).eq(2).toArray(Bool.self).contains(true))
        let gp = try Generator(seed: 11)
        try expectEqual(try Tensor.randperm(20, generator: gp), try f.get("randperm_20"), "randperm 20")
        try expectEqual(try Tensor.randperm(1000, generator: gp), try f.get("randperm_1000"), "randperm 1000")
    }
}

// MARK: - Arrays and raw buffers

@Suite("Arrays and raw buffers") struct ArrayOpsTests {
    @Test func arraysOfEveryElementTypeRoundTrip() throws {
        let f = try opsFixture("arrays")
        let values: [Double] = [-3.0, -1.5, 0.0, 0.25, 2.0, 7.0]
        let ints = [-100, -1, 0, 1, 42, 127]

        let f32 = try Tensor(values.map { Float($0) })
        try expectEqual(f32, try f.get("float_f32"), "Float")
        #expect(try f32.toArray(Float.self) == values.map { Float($0) })
        let f64 = try Tensor(values)
        try expectEqual(f64, try f.get("float_f64"), "Double")
        #expect(try f64.toArray(Double.self) == values)
        #if arch(x86_64) || arch(arm64)
        let f16 = try Tensor(values.map { Float16($0) })
        try expectEqual(f16, try f.get("float_f16"), "Float16")
        #expect(try f16.toArray(Float16.self) == values.map { Float16($0) })
        #endif

        let i64 = try Tensor(ints.map { Int64($0) })
        try expectEqual(i64, try f.get("int_i64"), "Int64")
        #expect(try i64.toArray(Int64.self) == ints.map { Int64($0) })
        try expectEqual(try Tensor(ints), try f.get("int_i64"), "Int")
        #expect(try Tensor(ints).toArray(Int.self) == ints)
        let i32 = try Tensor(ints.map { Int32($0) })
        try expectEqual(i32, try f.get("int_i32"), "Int32")
        #expect(try i32.toArray(Int32.self) == ints.map { Int32($0) })
        let i16 = try Tensor(ints.map { Int16($0) })
        try expectEqual(i16, try f.get("int_i16"), "Int16")
        #expect(try i16.toArray(Int16.self) == ints.map { Int16($0) })
        let i8 = try Tensor(ints.map { Int8($0) })
        try expectEqual(i8, try f.get("int_i8"), "Int8")
        #expect(try i8.toArray(Int8.self) == ints.map { Int8($0) })

        let bytes: [UInt8] = [0, 1, 128, 255]
        try expectEqual(try Tensor(bytes), try f.get("u8"), "UInt8")
        #expect(try Tensor(bytes).toArray(UInt8.self) == bytes)
        let flags = [true, false, false, true]
        try expectEqual(try Tensor(flags), try f.get("bool"), "Bool")
        #expect(try Tensor(flags).toArray(Bool.self) == flags)

        let shaped = try Tensor(values.map { Float($0) }, shape: [2, 3])
        try expectEqual(shaped, try f.get("shaped"), "shaped")
        // toArray converts to the requested element type, and reads views in logical order.
        #expect(try shaped.toArray(Int.self) == [-3, -1, 0, 0, 2, 7])
        #expect(try shaped.transpose(0, 1).toArray(Float.self) == [-3, 0.25, -1.5, 2, 0, 7])
        #expect(try Tensor(scalar: Float(4.5)).shape == [])
        #expect(try Tensor(scalar: Float(4.5)).item() == 4.5)
    }

    @Test func wrongShapeForArrayThrows() throws {
        #expect(throws: TorchError.self) { try Tensor([Float(1), 2, 3], shape: [2, 2]) }
        #expect(throws: TorchError.self) { try Tensor([Float(1), 2], shape: [-1, -2]) }
        #expect(throws: TorchError.self) { try Tensor([Float(1)], shape: [1 << 40, 1 << 40]) }
    }

    /// Sets a flag when freed.
    final class Owner {
        let buffer: UnsafeMutableRawBufferPointer
        let released: Flag
        init(count: Int, released: Flag) {
            buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count * 4, alignment: 64)
            buffer.initializeMemory(as: Float.self, repeating: 0)
            self.released = released
        }
        deinit {
            buffer.deallocate()
            released.value = true
        }
    }
    final class Flag { var value = false }

    /// A tensor over an owner's buffer; no reference to the owner survives this function but the tensor's.
    private func borrowedTensor(released: Flag) throws -> (Tensor, UnsafeMutablePointer<Float>) {
        let owner = Owner(count: 6, released: released)
        let floats = owner.buffer.bindMemory(to: Float.self)
        for i in 0..<6 { floats[i] = Float(i) }
        let t = try Tensor.borrowing(UnsafeRawBufferPointer(owner.buffer), shape: [2, 3], dtype: .float32, owner: owner)
        guard let base = floats.baseAddress else { throw TorchError.other("no buffer") }
        return (t, base)
    }

    @Test func borrowingIsZeroCopyAndKeepsTheOwnerAlive() throws {
        let released = Flag()
        var (tensor, memory): (Tensor?, UnsafeMutablePointer<Float>) = try borrowedTensor(released: released)
        #expect(try tensor?.toArray(Float.self) == [0, 1, 2, 3, 4, 5])
        // Writes through the buffer show in the tensor, and in-place writes to the tensor in the buffer.
        memory[4] = 40
        #expect(try tensor?.toArray(Float.self) == [0, 1, 2, 3, 40, 5])
        try tensor?.fill_(7)
        #expect(memory[0] == 7 && memory[5] == 7)
        // A view shares the storage: the owner must outlive the tensor it came from.
        var view = try tensor?.reshape([3, 2]).transpose(0, 1)
        tensor = nil
        #expect(!released.value, "owner freed while a view still uses its memory")
        memory[1] = -1
        #expect(try view?.toArray(Float.self) == [7, 7, 7, -1, 7, 7])
        view = nil
        #expect(released.value, "owner not released after the last tensor died")
    }

    @Test func borrowingChecksTheByteCount() throws {
        let released = Flag()
        let owner = Owner(count: 4, released: released)
        #expect(throws: TorchError.self) {
            try Tensor.borrowing(UnsafeRawBufferPointer(owner.buffer), shape: [5], dtype: .float32, owner: owner)
        }
        #expect(throws: TorchError.self) {
            try Tensor.borrowing(UnsafeRawBufferPointer(owner.buffer), shape: [-2, -2], dtype: .float32, owner: owner)
        }
        withExtendedLifetime(owner) {}
    }
}
