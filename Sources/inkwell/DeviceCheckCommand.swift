// `inkwell device-check`: the device lane on a real device (the GPU machine's check) or the virtual GPU.
import ArgumentParser
import DeviceCheck
import Foundation
import Torch

struct DeviceCheckCommand: ParsableCommand, ComputingCommand {
    static let configuration = CommandConfiguration(
        commandName: "device-check",
        abstract: "Run generation, LoRAs, the latent cache, training (fp32/fp16/bf16), BLIP and CLIP score on a device and compare with the CPU.",
        discussion: "Tiny random models of the real architectures, made in a temporary folder; one line per check. "
            + "Exits non-zero if any check fails. `--device vgpu` runs the virtual GPU that `make test` uses.")

    @Option(help: "The device to check: cuda, cuda:N or vgpu (default: the best device).") var device: String?
    @Option(help: "Only these checks (repeatable): \(DeviceLane.Check.allCases.map(\.rawValue).joined(separator: ", ")).")
    var check: [String] = []
    @Option(help: "Keep the models and runs in this folder (default: a temporary folder, removed afterwards).") var work: String?

    @OptionGroup var cpu: CPUOptions

    func run() throws {
        let target = try chooseDevice(device, setting: "--device", dtype: nil, dtypeSetting: "")
        let checks = try check.isEmpty ? DeviceLane.Check.allCases : check.map { name in
            guard let check = DeviceLane.Check(rawValue: name) else {
                throw ValidationError("--check must be one of \(DeviceLane.Check.allCases.map(\.rawValue).joined(separator: ", ")), got '\(name)'")
            }
            return check
        }
        if target == .cpu {
            print("note: the device is the CPU, so each check compares the CPU with itself (use --device cuda or vgpu)")
        }
        let folder = work.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("inkwell-device-check-\(ProcessInfo.processInfo.processIdentifier)")
        defer { if work == nil { try? FileManager.default.removeItem(at: folder) } }
        print("device lane on \(target) against the CPU")
        let results = DeviceLane(device: target, workDirectory: folder).run(checks) { print($0) }
        let failed = results.filter { !$0.passed }.count
        print(failed == 0 ? "all \(results.count) checks passed" : "\(failed) of \(results.count) checks FAILED")
        if failed > 0 { throw ExitCode(1) }
    }
}
