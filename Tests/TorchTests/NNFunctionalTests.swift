// torch.nn.functional counterparts: convolution, normalisation, activations, attention, resizing,
// padding and embedding, compared with PyTorch's output for the same inputs.
import Testing
import TestSupport
@testable import Torch

@Suite("Neural-network functions match PyTorch") struct NNFunctionalOpsTests {
    @Test func conv2dStridePaddingGroupsDilation() throws {
        let f = try opsFixture("conv")
        let x = try f.get("x"), w = try f.get("w"), b = try f.get("b")
        let cases: [(String, Tensor)] = [
            ("plain", try F.conv2d(x, weight: w, bias: b)),
            ("stride2_pad1", try F.conv2d(x, weight: w, bias: b, stride: 2, padding: 1)),
            ("groups2", try F.conv2d(x, weight: try f.get("wg"), bias: b, padding: 1, groups: 2)),
            ("depthwise", try F.conv2d(x, weight: try f.get("wd"), padding: 1, groups: 4)),
            ("dilation2", try F.conv2d(x, weight: w, padding: 2, dilation: 2)),
            ("asym", try F.conv2d(x, weight: w, bias: b, stride: (2, 1), padding: (1, 0), dilation: (1, 2), groups: 1)),
            ("pointwise", try F.conv2d(x, weight: try f.get("w1"))),
        ]
        // Sums of 36 products: fp32 accumulation order may differ (threads, blocking).
        for (key, actual) in cases { try expectClose(actual, try f.get(key), atol: 1e-5, key) }
    }

    @Test func conv2dOnChannelsLastInputEqualsContiguous() throws {
        let f = try opsFixture("conv")
        let x = try f.get("x"), w = try f.get("w"), b = try f.get("b")
        let cl = try x.channelsLast()
        let inputIsCL = cl.isChannelsLast
        #expect(inputIsCL)
        let fromCL = try F.conv2d(cl, weight: w, bias: b)
        let fromContiguous = try F.conv2d(x, weight: w, bias: b)
        try expectClose(fromCL, fromContiguous, atol: 1e-5, "channels-last vs contiguous")
        try expectClose(fromCL, try f.get("plain"), atol: 1e-5, "channels-last vs PyTorch")
        // The output layout follows PyTorch's CPU convolution for a channels-last input.
        let outputIsCL = fromCL.isChannelsLast, pytorchOutputIsCL = try f.get("cl_output_is_cl").all()
        #expect(outputIsCL == pytorchOutputIsCL)
        // A channels-last weight too: still the same numbers.
        try expectClose(try F.conv2d(cl, weight: try w.channelsLast(), bias: b), fromContiguous, atol: 1e-5, "both CL")
    }

    @Test func groupNormAndLayerNorm() throws {
        let f = try opsFixture("norm")
        let gx = try f.get("gx"), lx = try f.get("lx")
        let cases: [(String, Tensor)] = [
            ("group_norm", try F.groupNorm(gx, groups: 4, weight: try f.get("gw"), bias: try f.get("gb"), eps: 1e-6)),
            ("group_norm_plain", try F.groupNorm(gx, groups: 2, weight: nil, bias: nil)),
            ("layer_norm", try F.layerNorm(lx, normalizedShape: [8], weight: try f.get("lw"), bias: try f.get("lb"))),
            ("layer_norm_2d", try F.layerNorm(lx, normalizedShape: [5, 8], weight: try f.get("lw2"), bias: nil, eps: 1e-6)),
            ("layer_norm_plain", try F.layerNorm(lx, normalizedShape: [8], weight: nil, bias: nil)),
        ]
        for (key, actual) in cases { try expectClose(actual, try f.get(key), atol: 2e-6, key) }
    }

    @Test func activationsAndSoftmax() throws {
        let f = try opsFixture("activation")
        let x = try f.get("x")
        let cases: [(String, Tensor)] = [
            ("silu", try x.silu()), ("relu", try x.relu()), ("gelu", try x.gelu()),
            ("gelu_tanh", try x.gelu(approximate: true)), ("quick_gelu", try x.quickGelu()),
            ("softmax_last", try x.softmax(dim: -1)), ("softmax_first", try x.softmax(dim: 0)),
            ("log_softmax", try x.logSoftmax(dim: 1)),
        ]
        for (key, actual) in cases { try expectClose(actual, try f.get(key), atol: 1e-6, key) }
        // The two GELUs differ measurably, so each test above can tell them apart.
        #expect(try maxAbsDiff(try x.gelu(), try x.gelu(approximate: true)) > 1e-5)
    }

    @Test func scaledDotProductAttentionWithMasks() throws {
        let f = try opsFixture("attention")
        let q = try f.get("q"), k = try f.get("k"), v = try f.get("v")
        let cases: [(String, Tensor)] = [
            ("plain", try F.scaledDotProductAttention(q, k, v)),
            ("bool", try F.scaledDotProductAttention(q, k, v, mask: try f.get("bool_mask"))),
            ("additive", try F.scaledDotProductAttention(q, k, v, mask: try f.get("add_mask"))),
            ("causal", try F.scaledDotProductAttention(try f.get("qs"), try f.get("ks"), try f.get("vs"), isCausal: true)),
            ("scaled", try F.scaledDotProductAttention(q, k, v, scale: 0.3)),
            ("manual", try F.scaledDotProductAttention(q, k, v)),
        ]
        for (key, actual) in cases { try expectClose(actual, try f.get(key), atol: 1e-5, key) }
        #expect(try maxAbsDiff(try f.get("plain"), try f.get("bool")) > 1e-3, "the mask must matter")
        #expect(try maxAbsDiff(try f.get("plain"), try f.get("additive")) > 1e-3, "the mask must matter")
    }

    @Test func interpolateEveryModeUpAndDown() throws {
        let f = try opsFixture("resize")
        let x = try f.get("x")
        let modes: [(String, InterpolationMode)] = [
            ("nearest", .nearest), ("nearest_exact", .nearestExact), ("bilinear", .bilinear), ("bicubic", .bicubic),
        ]
        var checked = 0
        for (name, mode) in modes {
            for (direction, size) in [("up", (9, 13)), ("down", (4, 3))] {
                let key = "\(name)_\(direction)"
                let plain = try x.interpolate(size: size, mode: mode)
                try expectClose(plain, try f.get(key), atol: 1e-5, key)
                checked += 1
                guard mode == .bilinear || mode == .bicubic else { continue }
                try expectClose(try x.interpolate(size: size, mode: mode, antialias: true), try f.get(key + "_aa"),
                                atol: 1e-5, key + " antialias")
                try expectClose(try x.interpolate(size: size, mode: mode, alignCorners: true), try f.get(key + "_ac"),
                                atol: 1e-5, key + " align corners")
                checked += 2
            }
        }
        #expect(checked == 16)
        // Nearest and nearest-exact disagree on this downscale, so each is tested for itself.
        #expect(try maxAbsDiff(try f.get("nearest_down"), try f.get("nearest_exact_down")) > 0)
        // Antialias only matters when shrinking.
        #expect(try maxAbsDiff(try f.get("bilinear_down"), try f.get("bilinear_down_aa")) > 1e-3)
    }

    @Test func padConstantReflectReplicate() throws {
        let f = try opsFixture("resize")
        let x = try f.get("x")
        try expectEqual(try x.pad([1, 2, 3, 0], value: 0.5), try f.get("pad_constant"), "constant")
        try expectEqual(try x.pad([0, 1, 2, 1, 1, 1]), try f.get("pad_constant_3d"), "constant over three dims")
        try expectEqual(try x.pad([2, 1, 1, 3], mode: .reflect), try f.get("pad_reflect"), "reflect")
        try expectEqual(try x.pad([2, 1, 1, 3], mode: .replicate), try f.get("pad_replicate"), "replicate")
    }

    @Test func embeddingLooksUpRows() throws {
        let f = try opsFixture("sampling")
        try expectEqual(try F.embedding(try f.get("emb_i"), weight: try f.get("emb_w")), try f.get("embedding"), "embedding")
    }
}
