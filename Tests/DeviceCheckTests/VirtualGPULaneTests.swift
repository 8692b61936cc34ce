import Foundation
import Testing
import TestSupport
import Torch
@testable import DeviceCheck

/// The device lane on the virtual GPU: every GPU path runs with its models off the CPU, under CUDA's
/// device rules, and agrees with the CPU run.
@Suite(.serialized) struct VirtualGPULaneTests {
    static let lane = DeviceLane(device: .vgpu, workDirectory: FileManager.default.temporaryDirectory
        .appendingPathComponent("inkwell-vgpu-lane-\(ProcessInfo.processInfo.processIdentifier)"))

    @Test(arguments: DeviceLane.Check.allCases)
    func pathAgreesWithTheCPU(_ check: DeviceLane.Check) throws {
        let result = try #require(Self.lane.run([check]).first)
        print(result)
        #expect(result.passed, "\(result)")
    }
}
