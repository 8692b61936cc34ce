// LoRA files saved by Inkwell load in diffusers (`StableDiffusionPipeline.load_lora_weights`, run live by
// reference/lora_interop.py) and give the UNet output Inkwell gives with them; text-encoder adapters arrive in
// diffusers' CLIP text encoder with the same weights and scale. Several files with scales (`set_adapters`)
// match Inkwell's networks with multipliers.
import Foundation
import Testing
import TestSupport
import Torch
@testable import LoRA
@testable import StableDiffusion

@Suite struct LoRAInteropTests {
    private struct Summary: Decodable {
        struct Case: Decodable { let unet_modules: Int, text_encoder_modules: Int }
        let cases: [String: Case]
        let hashes: [String: String]
    }

    /// A trained-looking network: UNet attention + 1×1-conv projections + feed-forward (rank 4, alpha 8) and
    /// the text encoder's attention (rank 2, alpha 1), all with random A and B.
    private func makeNetwork(_ unet: UNet2DConditionModel, textEncoder: VarStore, seed: UInt64) throws -> LoRANetwork {
        let network = LoRANetwork(name: "n\(seed)", generator: try Generator(seed: seed))
        try network.addAdapters(to: unet.store, component: .unet,
                                config: LoRAConfig(rank: 4, alpha: 8, targets: .unetAttention + .unetProjections + .unetFeedForward))
        try network.addAdapters(to: textEncoder, component: .textEncoder,
                                config: LoRAConfig(rank: 2, alpha: 1, targets: .textEncoderAttention))
        try randomize(network, seed: seed + 100, std: 0.1)
        return network
    }

    @Test func inkwellFilesLoadInDiffusers() throws {
        let inputs = try LoRAInputs()
        let dir = try temporaryDirectory()
        let unet = try tinyUNet()
        let textEncoder = try textEncoderStandIn()
        let first = try makeNetwork(unet, textEncoder: textEncoder, seed: 1)
        let kohya = dir.appendingPathComponent("first.safetensors")
        let peft = dir.appendingPathComponent("first_peft.safetensors")
        let folded = dir.appendingPathComponent("first_folded.safetensors")
        var metadata = KohyaMetadata()
        metadata.outputName = "first"
        try first.saveKohya(to: kohya, metadata: metadata)
        let single = try unet.run(inputs)
        // Alphas that differ by module go into PEFT files as `alpha_pattern` (or folded into B). kohya files
        // carry one alpha per network, as kohya writes them: diffusers 0.42.1 drops per-module kohya alphas of
        // SD1.x attention layers (its alpha_pattern keys keep `processor.to_k_lora.down.weight`; peft warns).
        for adapter in first.adapters where adapter.key.hasSuffix("to_k") || adapter.key.hasSuffix("k_proj") {
            adapter.alpha = adapter.component == .unet ? 2 : 3
        }
        try first.savePEFT(to: peft)
        try first.savePEFT(to: folded, adapterMetadata: false)
        let varied = try unet.run(inputs)
        #expect(try maxAbsDiff(varied, single) > 1e-3)
        for adapter in first.adapters { adapter.alpha = adapter.component == .unet ? 8 : 1 }

        // A second network on the same layers; together with scales 0.7 and -0.4.
        let second = try makeNetwork(unet, textEncoder: textEncoder, seed: 2)
        let secondURL = dir.appendingPathComponent("second.safetensors")
        try second.saveKohya(to: secondURL)
        try LoRAStack([first, second]).setMultipliers([0.7, -0.4])
        let mixed = try unet.run(inputs)

        let out = dir.appendingPathComponent("diffusers.safetensors")
        let stdout = try runReference("lora_interop.py", [
            "--unet", try Fixtures.url(loraArea, "unet").path, "--io", try Fixtures.url(loraArea, "io.safetensors").path,
            "--out", out.path,
            "--case", "kohya=\(kohya.path)", "--case", "peft=\(peft.path)", "--case", "folded=\(folded.path)",
            "--case", "mixed=\(kohya.path):0.7,\(secondURL.path):-0.4",
        ])
        let summary = try JSONDecoder().decode(Summary.self, from: Data(stdout.split(separator: "\n").last.map { Data($0.utf8) } ?? Data()))
        let reference = try Safetensors.load(out).tensors
        for (name, expected) in [("kohya", single), ("peft", varied), ("folded", varied)] {
            #expect(summary.cases[name]?.unet_modules == 72 && summary.cases[name]?.text_encoder_modules == 8, "\(name)")
            try expectCloseReporting(expected, try reference.get("\(name).output"), atol: unetTolerance, "diffusers loading Inkwell's \(name) file")
        }
        try expectCloseReporting(mixed, try reference.get("mixed.output"), atol: unetTolerance, "two files with scales 0.7, -0.4")
        #expect(try maxAbsDiff(mixed, single) > 1e-3)

        // The text-encoder adapters as peft holds them after diffusers loaded each file (transformers 5 names
        // CLIP's modules without `text_model.`).
        for (name, index, network, multiplier) in [("kohya", 0, first, 1.0), ("peft", 0, first, 1.0), ("mixed", 1, second, -0.4)] {
            for adapter in network.adapters where adapter.component == .textEncoder {
                let flat = adapter.key.hasPrefix("text_model.") ? String(adapter.key.dropFirst("text_model.".count)) : adapter.key
                let module = reference.keys.contains("\(name).\(index).te.\(flat).lora_A") ? flat : adapter.key
                let prefix = "\(name).\(index).te.\(module)"
                let alpha = name == "peft" && adapter.key.hasSuffix("k_proj") ? 3.0 : adapter.alpha
                try expectClose(try reference.get(prefix + ".lora_A"), adapter.down, atol: 0, "\(prefix) A")
                try expectClose(try reference.get(prefix + ".lora_B"), adapter.up, atol: 0, "\(prefix) B")
                let scaling = try reference.get(prefix + ".scaling").item()
                #expect(abs(scaling - alpha / Double(adapter.rank) * multiplier) < 1e-12, "\(prefix) scaling \(scaling)")
            }
        }
        // Inkwell reads its own PEFT file back (alpha_pattern from the metadata) to the same output.
        let again = try tinyUNet()
        _ = try LoRANetwork.load(peft, into: [.unet: again.store, .textEncoder: try textEncoderStandIn()])
        try expectCloseReporting(try again.run(inputs), varied, atol: 1e-6, "Inkwell reading its PEFT file back")
        // kohya's sshs_model_hash, recomputed by the reference from the file bytes.
        #expect(try SafetensorsFile(url: kohya).metadata["sshs_model_hash"] == summary.hashes[kohya.path])
    }
}
