// `inkwell info`: what Inkwell computes on.
import ArgumentParser
import Torch

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the compute device, threads and libtorch build.")

    func run() throws {
        print("device:       \(Device.best)")
        print("CUDA devices: \(Device.cudaDeviceCount)")
        print("CPU threads:  \(Threads.count)")
        print("host memory:  \(HostMemory.isCaching ? "caching allocator (INKWELL_HOST_CACHE=0 turns it off)" : "c10's default allocator")")
    }
}
