// A c10d process group for data-parallel training, as `torch.distributed.init_process_group("gloo")` makes
// it: a TCPStore rendezvous at MASTER_ADDR:MASTER_PORT and a ProcessGroupGloo over it. Collectives work in
// place and wait at most `timeout`; a rank that never arrives or dies ends them with an error naming this
// rank, never a hang.
import CTorch
import Foundation

public final class ProcessGroup: @unchecked Sendable {
    /// What an all-reduce combines the ranks' tensors into.
    public enum ReduceOp: Int32, Sendable {
        case sum = 0
        case average = 1
    }

    let handle: ct_process_group
    public let rank: Int
    public let worldSize: Int
    public let timeout: TimeInterval

    /// Joins the group. `hostsStore`: this rank starts the TCPStore (rank 0 under `inkwell train --nproc`; no
    /// rank under torchrun, whose agent hosts it). `prefix` keeps this group's keys apart from others in the store.
    public init(host: String, port: Int, rank: Int, worldSize: Int, hostsStore: Bool, prefix: String = "inkwell",
                timeout: TimeInterval) throws {
        var out: ct_process_group?
        try check(ct_process_group_new(host, Int32(clamping: port), hostsStore, prefix, Int32(clamping: rank),
                                       Int32(clamping: worldSize), Int64(timeout * 1000), &out))
        guard let out else { throw TorchError.other("libtorch returned no process group") }
        handle = out
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
