// Shared pieces of the LoRA tests: the fixture area of reference/fixtures/lora.py, its tiny UNet and inputs,
// and a stand-in for the CLIP text encoder's module tree (until CLIPTextModel lands).
import Foundation
import Testing
import TestSupport
import Torch
@testable import LoRA
@testable import StableDiffusion

let loraArea = "lora"

/// fp32 after the whole tiny UNet: ~1e-4 per DESIGN.md; LoRA parity lands far below, so 1e-5 is stated.
let unetTolerance = 1e-5

func tinyUNet() throws -> UNet2DConditionModel {
    try UNet2DConditionModel.load(folder: Fixtures.url(loraArea, "unet"))
}

struct LoRAInputs {
    let sample: Tensor, timesteps: Tensor, context: Tensor, target: Tensor, baseOutput: Tensor
    init() throws {
        let io = try Fixtures.tensors(loraArea, "io")
        sample = try io.get("sample")
        timesteps = try io.get("timesteps")
        context = try io.get("encoder_hidden_states")
        target = try io.get("target")
        baseOutput = try io.get("base_output")
    }
}

extension UNet2DConditionModel {
    func run(_ inputs: LoRAInputs) throws -> Tensor {
        try noGrad { try self(inputs.sample, timestep: inputs.timesteps, encoderHiddenStates: inputs.context) }
    }
}

/// SD1.x's LDM→diffusers UNet key mapping, as the StableDiffusion-aware caller hands it to LoRA.
let ldmTranslation: LDMKeyTranslation = { SingleFileCheckpoint.unetKey($0, layersPerBlock: 2) }

/// The module tree of transformers' CLIPTextModel (width 32, MLP 37, `layers` layers), as the live reference
/// script's tiny text encoder has it: linear layers under their exact keys, nothing else.
func textEncoderStandIn(layers: Int = 2, width: Int = 32, intermediate: Int = 37) throws -> VarStore {
    let store = VarStore()
    for i in 0..<layers {
        let layer = store.root / "text_model" / "encoder" / "layers" / i
        for name in ["k_proj", "v_proj", "q_proj", "out_proj"] {
            _ = try Linear(layer / "self_attn" / name, inFeatures: width, outFeatures: width)
        }
        _ = try Linear(layer / "mlp" / "fc1", inFeatures: width, outFeatures: intermediate)
        _ = try Linear(layer / "mlp" / "fc2", inFeatures: intermediate, outFeatures: width)
    }
    return store
}

/// Fills every A and B of `network` with seeded random values (a trained-looking adapter, B ≠ 0).
func randomize(_ network: LoRANetwork, seed: UInt64, std: Double = 0.2) throws {
    let generator = try Generator(seed: seed)
    try noGrad {
        for (_, t) in network.parameters { try t.copy_(Tensor.randn(t.shape, generator: generator) * std) }
    }
}

/// Records an issue unless `body` throws an error whose description contains every one of `fragments`;
/// returns the description.
@discardableResult
func expectError(containing fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () throws -> Void) -> String {
    do {
        try body()
        Issue.record("expected an error mentioning \(fragments)", sourceLocation: sourceLocation)
        return ""
    } catch {
        let text = "\(error)"
        for fragment in fragments where !text.contains(fragment) {
            Issue.record("error does not mention '\(fragment)':\n\(text)", sourceLocation: sourceLocation)
        }
        return text
    }
}

/// `expectClose` that prints the measured error, so the report can quote it.
func expectCloseReporting(_ actual: Tensor, _ expected: Tensor, atol: Double, _ label: String,
                          sourceLocation: SourceLocation = #_sourceLocation) throws {
    if actual.shape == expected.shape { print("[lora parity] \(label): max abs diff \(try maxAbsDiff(actual, expected))") }
    try expectClose(actual, expected, atol: atol, label, sourceLocation: sourceLocation)
}
