// The GPU peak-memory readout (torch.cuda.max_memory_allocated) the benchmark reports.
import Testing
@testable import Torch

@Suite("Device memory") struct DeviceMemoryTests {
    @Test func peakAllocatedBytesIsTheGPUsAndAnErrorWithoutOne() throws {
        #expect(try Device.cpu.peakAllocatedBytes() == nil)
        try Device.cpu.resetPeakMemory()
        if Device.cudaAvailable {
            let gpu = Device.cuda(0)
            try gpu.resetPeakMemory()
            do { _ = try Tensor.zeros([64 << 20], device: gpu) }  // 256 MiB, freed again
            #expect(try gpu.peakAllocatedBytes()! >= 256 << 20)
            try gpu.resetPeakMemory()
            #expect(try gpu.peakAllocatedBytes()! < 256 << 20)
        } else {
            #expect(throws: TorchError.self) { try Device.cuda(0).peakAllocatedBytes() }
            #expect(throws: TorchError.self) { try Device.cuda(0).resetPeakMemory() }
        }
    }
}
