// Image ⇄ Tensor against diffusers' VaeImageProcessor (pil_to_numpy → numpy_to_pt → normalize, and
// denormalize → pt_to_numpy → numpy_to_pil), run by reference/fixtures/images.py. Tolerance: exact.
import Testing
import TestSupport
import Torch
@testable import Imaging

@Suite struct TensorConversionTests {
    @Test func imageToTensorIsDiffusersPreprocessing() throws {
        let f = try Fixtures.tensors("images", "tensor")
        let rgb = try Image(hwc: try f.get("pil_rgb"))
        try expectEqual(try rgb.tensor(range: .unit).unsqueeze(0), try f.get("pt01"), "[0, 1]")
        try expectEqual(try rgb.tensor(range: .symmetric).unsqueeze(0), try f.get("pt11"), "[-1, 1]")
        let gray = try Image(hwc: try f.get("pil_l"))
        #expect(gray.channels == 1)
        try expectEqual(try gray.tensor().unsqueeze(0), try f.get("pt11_l"), "grey [-1, 1]")
        let half = try rgb.tensor(dtype: .float16)
        #expect(half.dtype == .float16 && half.shape == [3, 23, 37])
    }

    @Test func tensorToImageIsDiffusersPostprocessing() throws {
        let f = try Fixtures.tensors("images", "tensor")
        // Values on the x.5 rounding boundaries, outside [-1, 1], float32 and float16.
        try expectEqual(try Image(tensor: try f.get("pt_in")).hwcTensor(), try f.get("pil_out"), "float32")
        try expectEqual(try Image(tensor: try f.get("pt_in_f16")).hwcTensor(), try f.get("pil_out_f16"), "float16")
        try expectEqual(try Image(tensor: try f.get("pt_in_l")).hwcTensor(), try f.get("pil_out_l").unsqueeze(2), "grey")
        let batch = try Image.batch(try Tensor.cat([try f.get("pt_in"), try f.get("pt_in")]))
        #expect(batch.count == 2 && batch[0] == batch[1])
    }

    @Test func roundTripIsLosslessAndShapesAreChecked() throws {
        let image = try Image.load(try Corpus.url("png_rgba8.png"))
        #expect(try Image(tensor: try image.tensor()) == image)
        #expect(try Image(tensor: try image.tensor(range: .unit), range: .unit) == image)
        #expect(throws: ImageError.self) { try Image(tensor: try Tensor.zeros([2, 3, 4, 4])) }
        #expect(throws: ImageError.self) { try Image(tensor: try Tensor.zeros([5, 4, 4])) }
        #expect(throws: ImageError.self) { try Image(tensor: try Tensor.zeros([3, 4, 4], dtype: .int64)) }
    }
}
