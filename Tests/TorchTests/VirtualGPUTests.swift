import Foundation
import Testing
import TestSupport
@testable import Torch

/// The virtual GPU itself: CUDA's device rules, the CPU's numbers.
@Suite struct VirtualGPUTests {
    @Test func tensorsLiveOnItAndComeBackUnchanged() throws {
        let cpu = try Tensor.randn([3, 5], generator: Generator(seed: 1))
        let moved = try cpu.to(.vgpu)
        #expect(moved.device == .vgpu)
        #expect(Device(name: "vgpu") == .vgpu && Device.vgpu.description == "vgpu:0")
        #expect(try maxAbsDiff(moved.to(.cpu), cpu) == 0)
        #expect(try moved.sum().item() as Double == cpu.sum().item() as Double)
    }

    @Test func mixingWithANonScalarCPUTensorThrowsAsOnCUDA() throws {
        let x = try Tensor.ones([2, 3], device: .vgpu)
        #expect(throws: TorchError.self) { try x + Tensor.ones([2, 3]) }
        #expect(throws: TorchError.self) { try x.matmul(Tensor.ones([3, 2])) }
        #expect(throws: TorchError.self) { try Tensor.cat([x, Tensor.ones([2, 3])]) }
        // A 0-dim CPU tensor is a scalar, which CUDA accepts too.
        #expect(try (x + Tensor(scalar: 2.0)).device == .vgpu)
        do {
            _ = try x * Tensor.ones([2, 3])
            Issue.record("a CPU tensor mixed with a vgpu tensor")
        } catch {
            #expect("\(error)".contains("Expected all tensors to be on the same device"), "\(error)")
        }
    }

    @Test func randomOpsNeedAGeneratorOfTheirDeviceAndDrawTheCPUNumbers() throws {
        #expect(throws: TorchError.self) { try Tensor.randn([4], device: .vgpu, generator: Generator(seed: 3)) }
        let drawn = try Tensor.randn([4], device: .vgpu, generator: Generator(seed: 3, device: .vgpu))
        #expect(drawn.device == .vgpu)
        #expect(try maxAbsDiff(drawn.to(.cpu), Tensor.randn([4], generator: Generator(seed: 3))) == 0)
        let g = try Generator(seed: 5, device: .vgpu)
        let state = try g.state()
        let first = try Tensor.rand([3], device: .vgpu, generator: g)
        try g.setState(state)
        #expect(try maxAbsDiff(Tensor.rand([3], device: .vgpu, generator: g).to(.cpu), first.to(.cpu)) == 0)
    }

    @Test func gradientsFlowOnTheDeviceAndEqualTheCPUs() throws {
        func run(_ device: Device) throws -> (Tensor, Tensor) {
            let g = try Generator(seed: 7)
            let w = try Tensor.randn([4, 3, 3, 3], generator: g).to(device).requiresGrad(true)
            let x = try Tensor.randn([2, 3, 8, 8], generator: g).to(device)
            let y = try F.groupNorm(F.conv2d(x, weight: w, padding: 1), groups: 2, weight: nil, bias: nil)
            try (y * y).sum().backward()
            let grad = try #require(w.grad)
            return (y, grad)
        }
        let (cpuOut, cpuGrad) = try run(.cpu)
        let (out, grad) = try run(.vgpu)
        #expect(grad.device == .vgpu)
        try expectClose(out.to(.cpu), cpuOut, atol: 1e-5, "forward")
        try expectClose(grad.to(.cpu), cpuGrad, atol: 1e-4, "grad")
    }

    @Test func viewsAndInPlaceUpdatesShareTheDevicesMemory() throws {
        let x = try Tensor.zeros([2, 3], device: .vgpu)
        let column = try x.transpose(0, 1)
        try column.fill_(4)
        try x.add_(Tensor.ones([2, 3], device: .vgpu), alpha: 1)
        #expect(try x.to(.cpu).toArray(Float.self) == Array(repeating: 5, count: 6))
    }
}
