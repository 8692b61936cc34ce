// A c10d process group for data-parallel training, as `torch.distributed.init_process_group` makes it: a
// TCPStore rendezvous at MASTER_ADDR:MASTER_PORT and a ProcessGroupGloo (CPU ranks) or ProcessGroupNCCL (one
// CUDA GPU per rank) over it. Collectives work in place and wait at most `timeout`; a rank that never arrives
// or dies ends them with an error naming this rank, never a hang.
import CTorch
import Foundation

public final class ProcessGroup: @unchecked Sendable {
    /// What an all-reduce combines the ranks' tensors into.
    public enum ReduceOp: Int32, Sendable {
        case sum = 0
        case average = 1
    }

    /// The c10d backend, as torch.distributed names it.
    public enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
        /// Host memory, TCP between the ranks: CPU ranks (GPU tensors are staged through the host).
        case gloo
        /// NVIDIA's collectives between GPUs (NVLink, PCIe, InfiniBand): one CUDA GPU per rank.
        case nccl

        public var description: String { rawValue }

        /// torch's default for ranks on `device` (accelerate and torchrun scripts choose the same).
        public static func `default`(for device: Device) -> Backend {
            if case .cuda = device { return .nccl }
            return .gloo
        }

        /// The backends this build has: NCCL needs a CUDA libtorch and CUDA's and NCCL's headers at build time.
        public static var built: [Backend] { ct_process_group_has_nccl() ? [.gloo, .nccl] : [.gloo] }
    }

    let handle: ct_process_group
    public let backend: Backend
    public let rank: Int
    public let worldSize: Int
    public let timeout: TimeInterval

    /// Joins the group. `hostsStore`: this rank starts the TCPStore (rank 0 under `inkwell train --nproc`; no
    /// rank under torchrun, whose agent hosts it). `prefix` keeps this group's keys apart from others in the store.
    /// NCCL runs on `cudaDevice` (this rank's GPU); a missing GPU or a build without NCCL fails before the rendezvous.
    public init(host: String, port: Int, rank: Int, worldSize: Int, hostsStore: Bool, prefix: String = "inkwell",
                timeout: TimeInterval, backend: Backend = .gloo, cudaDevice: Int = 0) throws {
        var out: ct_process_group?
        try check(ct_process_group_new(host, Int32(clamping: port), hostsStore, prefix, Int32(clamping: rank),
                                       Int32(clamping: worldSize), Int64(timeout * 1000), backend == .nccl ? 1 : 0,
                                       Int32(clamping: cudaDevice), &out))
        guard let out else { throw TorchError.other("libtorch returned no process group") }
        handle = out
        self.backend = backend
        self.rank = rank
        self.worldSize = worldSize
        self.timeout = timeout
    }
    deinit { ct_process_group_free(handle) }

    public func allReduce(_ tensor: Tensor, _ op: ReduceOp = .sum) throws {
        try collective("all-reduce") { ct_process_group_all_reduce(handle, tensor.handle, op.rawValue) }
    }

    public func broadcast(_ tensor: Tensor, from root: Int) throws {
        try collective("broadcast") { ct_process_group_broadcast(handle, tensor.handle, Int32(clamping: root)) }
    }

    public func barrier() throws {
        try collective("barrier") { ct_process_group_barrier(handle) }
    }

    /// Runs a collective; its failure says which rank saw it and what it most likely means.
    private func collective(_ name: String, _ body: () -> UnsafeMutablePointer<ct_error>?) throws {
        do {
            try check(body())
        } catch let error as TorchError {
            throw TorchError.other("rank \(rank) of \(worldSize): the \(name) failed (another rank died or did not answer "
                + "within \(Int(timeout)) s): \(error)")
        }
    }
}
