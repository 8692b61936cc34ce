// The trainer's data parallelism, as torch's DistributedDataParallel does it: every rank holds the same
// adapters (rank 0's, broadcast at the start), computes gradients on its share of each global batch, and the
// gradients are averaged over the ranks in flat buckets (DDP's 25 MiB `bucket_cap_mb`) before clipping and the
// optimizer step, so every rank takes the same step. Scalars that every rank needs the same (the step's loss,
// whether to stop) go through one small all-reduce.
import Foundation
import Torch

public struct DataParallel {
    public let group: ProcessGroup
    public var rank: Int { group.rank }
    public var worldSize: Int { group.worldSize }
    /// Rank 0 writes the run's files (log, checkpoints, samples, state, status); the others only compute.
    public var writesFiles: Bool { rank == 0 }
    /// DDP's default bucket size.
    static let bucketBytes = 25 << 20

    public init(group: ProcessGroup) {
        self.group = group
    }

    /// This rank's rows of a global micro-batch of `count` rows, `perRank` rows per rank: consecutive slices, so
    /// rank r of a 2-rank run with batch 1 gets exactly row r of the 1-rank run's batch of 2. A short last batch
    /// leaves the last ranks fewer rows, or none.
    func rows(of count: Int, perRank: Int) -> Range<Int> {
        let start = min(count, rank * perRank)
        return start..<min(count, start + perRank)
    }

    /// Gives every rank rank 0's values of `tensors` (the adapters at the start of a run), bucket by bucket.
    func broadcast(_ tensors: [Tensor]) throws {
        try noGrad {
            for bucket in try Self.buckets(tensors) {
                let flat = try Tensor.cat(try bucket.map { try $0.detach().reshape([-1]) })
                try group.broadcast(flat, from: 0)
                try scatter(flat, into: bucket)
            }
        }
    }

    /// Replaces each parameter's gradient with its mean over the ranks. A parameter without a gradient on this rank
    /// contributes zeros (and then has the mean as its gradient only if it had one: all ranks run the same graph).
    func averageGradients(_ parameters: [Tensor]) throws {
        try noGrad {
            for bucket in try Self.buckets(parameters) {
                let grads = try bucket.map { p in try p.grad ?? Tensor.zeros(p.shape, dtype: p.dtype, device: p.device) }
                let flat = try Tensor.cat(try grads.map { try $0.reshape([-1]) })
                try group.allReduce(flat, .average)
                try scatter(flat, into: zip(bucket, grads).compactMap { p, g in p.grad == nil ? nil : g })
            }
        }
    }

    /// Each value reduced over the ranks (float64).
    func reduce(_ values: [Double], _ op: ProcessGroup.ReduceOp) throws -> [Double] {
        let t = try Tensor(values, shape: [values.count])
        try group.allReduce(t, op)
        return try t.toArray(Double.self)
    }

    /// True when any rank asks to stop: every rank then stops after the same step.
    func anyRank(_ flag: Bool) throws -> Bool {
        try reduce([flag ? 1 : 0], .sum)[0] > 0
    }

    /// Makes `generator` continue rank 0's stream on every rank (LoRA dropout's: a rank left without rows by a short
    /// batch draws no masks, and would otherwise fall out of step with the state rank 0 saves).
    func synchronize(_ generator: Generator) throws {
        let state = try generator.state().contiguous()
        try group.broadcast(state, from: 0)
        try generator.setState(state)
    }

    func barrier() throws { try group.barrier() }

    /// Copies consecutive pieces of `flat` into `tensors`, in order.
    private func scatter(_ flat: Tensor, into tensors: [Tensor]) throws {
        var offset = 0
        for t in tensors {
            let n = t.count
            try t.copy_(try flat.narrow(dim: 0, start: offset, length: n).view(t.shape))
            offset += n
        }
    }

    /// `tensors` in order, grouped into runs of one dtype and device of at most `bucketBytes` each (a larger
    /// tensor is a bucket of its own).
    static func buckets(_ tensors: [Tensor]) throws -> [[Tensor]] {
        var out: [[Tensor]] = []
        var current: [Tensor] = []
        var bytes = 0
        for t in tensors {
            let size = t.count * t.dtype.size
            if let first = current.first,
               first.dtype != t.dtype || first.device != t.device || bytes + size > bucketBytes {
                out.append(current)
                current = []
                bytes = 0
            }
            current.append(t)
            bytes += size
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}
