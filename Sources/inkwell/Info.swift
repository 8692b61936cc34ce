// `inkwell info`: what Inkwell computes on.
import ArgumentParser
import Foundation
import Torch

struct Info: ParsableCommand, ComputingCommand {
    static let configuration = CommandConfiguration(abstract: "Show the compute device, threads and libtorch build.")

    @OptionGroup var cpu: CPUOptions

    func run() throws {
        print("device:       \(Device.best)")
        print("CUDA devices: \(Device.cudaDeviceCount)")
        print("CPU threads:  \(threads())")
        print("OpenMP wait:  \(CPUPacing.waitPolicy)")
        print("distributed:  \(ProcessGroup.Backend.built.map(\.rawValue).joined(separator: ", ")) (c10d backends of this build)")
        print("host memory:  \(HostMemory.isCaching ? "caching allocator (INKWELL_HOST_CACHE=0 turns it off)" : "c10's default allocator")")
    }

    /// The count and who set it; the automatic choice after one short measurement of the machine.
    func threads() -> String {
        guard let source = CPUPacing.source else { return "\(Threads.count)" }
        guard let pacer = CPUPacing.pacer else { return "\(Threads.count) (\(source))" }
        Thread.sleep(forTimeInterval: CPUPacing.Pacer.firstWindow * 2)
        CPUPacing.tick()
        let load = pacer.othersBusy.map { String(format: "other processes keep %.1f of %d usable cores busy", $0, pacer.usableCores) }
            ?? "\(pacer.usableCores) usable cores"
        return "\(Threads.count) of at most \(pacer.ceiling) (\(source); \(load))"
    }
}
