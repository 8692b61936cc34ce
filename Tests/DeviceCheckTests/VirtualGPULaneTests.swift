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
        // The lane's tiny models run thousands of small ops; on 2 busy cores OpenMP's spinning workers made
        // it 15× slower (60 s vs 4 s for the generation row). Both sides of each comparison use one thread.
        let threads = Threads.count
        Threads.count = 1
        defer { Threads.count = threads }
        let result = try #require(Self.lane.run([check]).first)
        print(result)
        #expect(result.passed, "\(result)")
    }
}
