// c10d through the shim: two ranks (threads of this process, each with its own ProcessGroupGloo over one
// TCPStore, as two processes would have) all-reduce, broadcast and meet at a barrier; a rank that never arrives
// is named within the timeout instead of hanging. NCCL: built in whenever the libtorch is a CUDA build, and
// refused before the rendezvous where its GPU is missing (its collectives run in the GPU check).
import Foundation
import Testing
import Torch

@Suite struct ProcessGroupTests {
    /// A free port: the kernel's choice for port 0, released at once.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Runs `body(rank)` for ranks 0 and 1 at once, each in a group of its own joining over one store.
    static func twoRanks<T: Sendable>(timeout: TimeInterval = 20, _ body: @escaping @Sendable (ProcessGroup) throws -> T) throws -> [T] {
        let port = try freePort()
        let results = Results<T>()
        DispatchQueue.concurrentPerform(iterations: 2) { rank in
            results.set(rank, Result {
                let group = try ProcessGroup(host: "127.0.0.1", port: port, rank: rank, worldSize: 2, hostsStore: rank == 0,
                                             prefix: "test", timeout: timeout)
                return try body(group)
            })
        }
        return try (0..<2).map { try results.get($0).get() }
    }

    final class Results<T>: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [Int: Result<T, Error>] = [:]
        func set(_ rank: Int, _ value: Result<T, Error>) { lock.withLock { values[rank] = value } }
        func get(_ rank: Int) -> Result<T, Error> { lock.withLock { values[rank]! } }
    }

    @Test func allReduceSumsAndAveragesBroadcastCopiesAndBarrierMeets() throws {
        let out = try Self.twoRanks { group -> [[Float]] in
            let r = Float(group.rank)
            let sum = try Tensor([1 + r, 10 * (r + 1), -r], shape: [3])
            try group.allReduce(sum, .sum)
            let mean = try Tensor([1 + r, 10 * (r + 1), -r], shape: [3])
            try group.allReduce(mean, .average)
            let shared = try Tensor([r, r + 0.5], shape: [2])
            try group.broadcast(shared, from: 1)
            try group.barrier()
            return [try sum.toArray(Float.self), try mean.toArray(Float.self), try shared.toArray(Float.self)]
        }
        for ranks in out {
            #expect(ranks[0] == [3, 30, -1])
            #expect(ranks[1] == [1.5, 15, -0.5])
            #expect(ranks[2] == [1, 1.5])
        }
    }

    @Test func aRankThatNeverArrivesIsNamedWithinTheTimeout() throws {
        let port = try Self.freePort()
        let started = Date()
        #expect {
            _ = try ProcessGroup(host: "127.0.0.1", port: port, rank: 0, worldSize: 3, hostsStore: true, prefix: "alone", timeout: 2)
        } throws: { error in
            "\(error)".contains("rank(s) 1, 2 of 3 never arrived at the rendezvous within 2 s")
        }
        #expect(Date().timeIntervalSince(started) < 15)
    }

    @Test func aCollectiveWithADepartedRankFailsNamingThisRank() throws {
        let port = try Self.freePort()
        let results = Results<String>()
        DispatchQueue.concurrentPerform(iterations: 2) { rank in
            results.set(rank, Result {
                let group = try ProcessGroup(host: "127.0.0.1", port: port, rank: rank, worldSize: 2, hostsStore: rank == 0,
                                             prefix: "gone", timeout: 3)
                try group.barrier()
                guard rank == 0 else { return "left" }  // rank 1 leaves: its group is freed, its connections closed
                do {
                    try group.allReduce(try Tensor([Float(1)], shape: [1]))
                    return "no error"
                } catch {
                    return "\(error)"
                }
            })
        }
        let message = try results.get(0).get()
        #expect(message.contains("rank 0 of 2: the all-reduce failed (another rank died or did not answer within 3 s)"), "\(message)")
    }

    @Test func aGroupOfOneReducesToItself() throws {
        // torchrun --nproc-per-node 1: the trainer still goes through the group.
        let group = try ProcessGroup(host: "127.0.0.1", port: try Self.freePort(), rank: 0, worldSize: 1, hostsStore: true,
                                     prefix: "one", timeout: 10)
        let t = try Tensor([Float(1.5), -2, 7], shape: [3])
        try group.allReduce(t, .average)
        try group.allReduce(t, .sum)
        try group.broadcast(t, from: 0)
        try group.barrier()
        #expect(try t.toArray(Float.self) == [1.5, -2, 7])
        #expect(group.backend == .gloo)
    }

    @Test func theDefaultBackendFollowsTheDevice() {
        #expect(ProcessGroup.Backend.default(for: .cuda(1)) == .nccl)
        #expect(ProcessGroup.Backend.default(for: .cpu) == .gloo)
    }

    /// The CUDA build of libtorch is what this process runs on (the binaries link libtorch_cuda with
    /// --no-as-needed): then the shim must have ProcessGroupNCCL, or multi-GPU training would silently fall
    /// back to Gloo. Fails if the build lost CUDA's or NCCL's headers (scripts/bootstrap.sh installs them).
    @Test func thisBuildHasNCCLWhenItsLibtorchIsACUDABuild() throws {
        // Read to the end: Foundation's String(contentsOfFile:) stops at 4 KiB for /proc files.
        let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/maps"))
        let maps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        try #require(maps.contains("libtorch_cpu.so"), "libtorch is not loaded?")
        if maps.contains("libtorch_cuda.so") {
            #expect(ProcessGroup.Backend.built == [.gloo, .nccl])
        } else {
            #expect(ProcessGroup.Backend.built == [.gloo], "NCCL without libtorch_cuda cannot be")
        }
    }

    @Test func ncclIsRefusedBeforeTheRendezvousWhenItsGPUIsMissing() throws {
        // A GPU index past the last (cuda:0 on this CPU-only machine): the rank fails at once, not after the
        // timeout, saying what to use instead, and never joins the store (no other rank would be left waiting).
        let missing = Device.cudaDeviceCount
        let started = Date()
        #expect {
            _ = try ProcessGroup(host: "127.0.0.1", port: try Self.freePort(), rank: 1, worldSize: 2, hostsStore: false,
                                 prefix: "nccl", timeout: 60, backend: .nccl, cudaDevice: missing)
        } throws: { error in
            let text = "\(error)"
            return ProcessGroup.Backend.built.contains(.nccl)
                ? text.contains("rank 1: NCCL needs a CUDA GPU per rank, but cuda:\(missing) is not there") && text.contains("gloo")
                : text.contains("built without NCCL") && text.contains("gloo")
        }
        #expect(Date().timeIntervalSince(started) < 10)
    }
}
