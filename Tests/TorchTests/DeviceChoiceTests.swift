// The device and dtype checks that run before any model loads: each error names the flag or key and the fix.
import Testing
import TestSupport
import Torch

@Suite struct DeviceChoiceTests {
    func message(_ body: () throws -> Any) -> String? {
        do { _ = try body(); return nil } catch { return "\(error)" }
    }

    @Test func cudaWithoutAGPUNamesTheSettingAndTheFix() throws {
        let text = message { try DeviceChoice.resolve("cuda", setting: "model.device", environment: [:], cudaCount: 0) }
        #expect(text?.contains("model.device is 'cuda'") == true, "\(text ?? "no error")")
        #expect(text?.contains("no CUDA GPU") == true && text?.contains("set model.device to cpu") == true)
        let flag = message { try DeviceChoice.resolve("cuda:0", setting: "--device", environment: [:], cudaCount: 0) }
        #expect(flag?.contains("--device is 'cuda:0'") == true, "\(flag ?? "no error")")
        // And on this machine's real count, when it has no GPU.
        if Device.cudaDeviceCount == 0 {
            #expect(throws: DeviceChoiceError.self) { try DeviceChoice.resolve("cuda", setting: "--device") }
        }
    }

    @Test func outOfRangeGPUListsTheValidOnes() throws {
        let text = message { try DeviceChoice.resolve("cuda:2", setting: "--device", environment: [:], cudaCount: 2) }
        #expect(text == "--device is 'cuda:2', but this machine has 2 CUDA GPUs: use cuda:0 … cuda:1", "\(text ?? "no error")")
        let one = message { try DeviceChoice.resolve("cuda:1", setting: "--device", environment: [:], cudaCount: 1) }
        #expect(one?.contains("use cuda:0 (or cuda)") == true, "\(one ?? "no error")")
        #expect(try DeviceChoice.resolve("cuda:1", setting: "--device", environment: [:], cudaCount: 2) == .cuda(1))
        #expect(try DeviceChoice.resolve("CUDA", setting: "--device", environment: [:], cudaCount: 1) == .cuda(0))
    }

    @Test func autoTakesTheBestOrINKWELL_DEVICEAndChecksIt() throws {
        #expect(try DeviceChoice.resolve(nil, setting: "--device", environment: [:], cudaCount: 0) == .cpu)
        #expect(try DeviceChoice.resolve("auto", setting: "model.device", environment: [:], cudaCount: 1) == .cuda(0))
        #expect(try DeviceChoice.resolve("auto", setting: "model.device", environment: ["INKWELL_DEVICE": "cpu"], cudaCount: 1) == .cpu)
        let forced = message { try DeviceChoice.resolve("auto", setting: "model.device", environment: ["INKWELL_DEVICE": "cuda"], cudaCount: 0) }
        #expect(forced?.hasPrefix("INKWELL_DEVICE is 'cuda'") == true, "\(forced ?? "no error")")
        // A typo in the variable is an error, not a silent fall-back to the best device.
        let typo = message { try DeviceChoice.resolve(nil, setting: "--device", environment: ["INKWELL_DEVICE": "cdua"], cudaCount: 0) }
        #expect(typo == "INKWELL_DEVICE must be auto, cpu, cuda or cuda:N, got 'cdua'", "\(typo ?? "no error")")
        // An explicit choice wins over the variable.
        #expect(try DeviceChoice.resolve("cpu", setting: "--device", environment: ["INKWELL_DEVICE": "cdua"], cudaCount: 0) == .cpu)
        let bad = message { try DeviceChoice.resolve("tpu", setting: "--device", environment: [:], cudaCount: 0) }
        #expect(bad == "--device must be auto, cpu, cuda or cuda:N, got 'tpu'", "\(bad ?? "no error")")
    }

    @Test func halfPrecisionOnTheCPU() throws {
        let fp16 = message { try DeviceChoice.check(dtype: .float16, on: .cpu, setting: "training.mixed_precision") }
        #expect(fp16?.hasPrefix("training.mixed_precision is fp16 on the CPU, which Inkwell refuses") == true, "\(fp16 ?? "no error")")
        #expect(fp16?.contains("Use fp32") == true)
        let bf16 = try DeviceChoice.check(dtype: .bfloat16, on: .cpu, setting: "--dtype")
        #expect(bf16.count == 1 && bf16[0].hasPrefix("--dtype is bf16 on the CPU") && bf16[0].contains("slow"))
        #expect(try DeviceChoice.check(dtype: .float32, on: .cpu, setting: "--dtype").isEmpty)
        #expect(try DeviceChoice.check(dtype: .float16, on: .cuda(0), setting: "--dtype").isEmpty)
        #expect(try DeviceChoice.check(dtype: .bfloat16, on: .cuda(0), setting: "--dtype").isEmpty)
    }
}

/// `replaceData` is how `VarStore.move(to:)` moves a model (PyTorch's `param.data = …`): the store and the layer
/// hold the same tensor object, which now holds the new data and keeps `requiresGrad`.
@Suite struct ReplaceDataTests {
    @Test func layersSeeTheNewData() throws {
        let store = VarStore()
        let linear = try Linear(store.root / "proj", inFeatures: 2, outFeatures: 2, bias: false)
        try linear.weight.requiresGrad(true)
        try linear.weight.replaceData(with: Tensor([1.0, 2, 3, 4], shape: [2, 2]))
        #expect(store["proj.weight"]?.dtype == .float64 && linear.weight.requiresGrad)
        let y = try noGrad { try linear(Tensor([1.0, 1], shape: [1, 2])) }
        try expectEqual(y, Tensor([3.0, 7], shape: [1, 2]), "x Wᵀ with the new W")
    }

    /// Parameters and attached adapters go to the device and back with their values, in the same objects.
    @Test func moveCarriesParametersAndAdapters() throws {
        final class Extra: LayerAdapter {
            let t: Tensor
            init(_ t: Tensor) { self.t = t }
            func adapt(_ input: Tensor, output: Tensor) throws -> Tensor { try output + t }
            var tensors: [Tensor] { [t] }
        }
        let store = VarStore(generator: try Generator(seed: 1))
        let linear = try Linear(store.root / "proj", inFeatures: 3, outFeatures: 2)
        let extra = Extra(try Tensor([0.5, -0.5]))
        linear.adapters.append(extra)
        let x = try Tensor.randn([4, 3], generator: Generator(seed: 2))
        let expected = try noGrad { try linear(x) }
        try store.move(to: .vgpu)
        #expect(store.device == .vgpu && linear.weight.device == .vgpu && linear.bias?.device == .vgpu && extra.t.device == .vgpu)
        // Under CUDA's rules a CPU input no longer mixes: the layer really runs on the device now.
        #expect(throws: TorchError.self) { try noGrad { try linear(x) } }
        try expectEqual(try noGrad { try linear(x.to(.vgpu)) }.to(.cpu), expected, "on the device")
        try store.move(to: .cpu)
        #expect(store.device == .cpu && linear.weight.device == .cpu && extra.t.device == .cpu)
        try expectEqual(try noGrad { try linear(x) }, expected, "back on the CPU")
    }
}
