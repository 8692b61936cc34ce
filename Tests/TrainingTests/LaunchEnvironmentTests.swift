// torchrun's worker environment read back, and the data-parallel pieces that need no second process.
import Foundation
import Testing
import Torch
@testable import Training

@Suite struct LaunchEnvironmentTests {
    @Test func torchrunsVariablesPlaceTheRank() throws {
        // What torch.distributed.run sets for worker 1 of 2 (elastic agent hosting the store).
        let env = ["RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "10.0.0.5", "MASTER_PORT": "29400",
                   "TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RESTART_COUNT": "3", "GROUP_RANK": "0"]
        let launch = try #require(try LaunchEnvironment.read(env))
        #expect(launch == LaunchEnvironment(rank: 1, worldSize: 2, localRank: 1, masterAddress: "10.0.0.5", masterPort: 29400,
                                            agentHostsStore: true, restartCount: 3))
        #expect(!launch.hostsStore)
        #expect(launch.storePrefix == "inkwell/3")
        #expect(try LaunchEnvironment.read(launch.variables) == launch)
        #expect(try LaunchEnvironment.read(["PATH": "/bin"]) == nil)
        let own = try #require(try LaunchEnvironment.read(["RANK": "0", "WORLD_SIZE": "4", "MASTER_PORT": "1234"]))
        #expect(own.hostsStore && own.localRank == 0 && own.masterAddress == "127.0.0.1")
    }

    @Test func aBadVariableIsNamed() {
        #expect { try LaunchEnvironment.read(["RANK": "2", "WORLD_SIZE": "2"]) } throws: {
            "\($0)".contains("RANK=2 is not below WORLD_SIZE=2")
        }
        #expect { try LaunchEnvironment.read(["RANK": "0"]) } throws: { "\($0)".contains("WORLD_SIZE is not set") }
        #expect { try LaunchEnvironment.read(["RANK": "0", "WORLD_SIZE": "2", "MASTER_PORT": "port"]) } throws: {
            "\($0)".contains("MASTER_PORT=port is not an integer")
        }
    }

    /// The thread count each rank of `--nproc N` gets: cores / N in OMP_NUM_THREADS (marked as the launcher's in
    /// INKWELL_LAUNCHER_THREADS), as torchrun gives, unless the user fixed a count (OMP_NUM_THREADS, or INKWELL_THREADS, which wins in the rank). The ranks here are shells
    /// that write what they were given.
    @Test func ranksShareTheCoresUnlessTheUserFixedACount() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ranks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func given(_ environment: [String: String]) throws -> [String] {
            let script = "echo \"${OMP_NUM_THREADS:-unset} ${INKWELL_THREADS:-unset} ${INKWELL_LAUNCHER_THREADS:-unset}\" > \"$OUT/$RANK\""
            let outcome = try RankLauncher(executable: "/bin/sh", arguments: ["-c", script], count: 2,
                                           environment: environment.merging(["OUT": dir.path]) { $1 }).run(relay: { _ in })
            #expect(outcome.status == 0)
            return try (0..<2).map { try String(contentsOf: dir.appendingPathComponent("\($0)"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines) }
        }
        let share = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        // The launcher's own share is marked as such (a resumed run's recorded count replaces it); the user's is not.
        #expect(try given([:]) == ["\(share) unset \(share)", "\(share) unset \(share)"])
        #expect(try given(["OMP_NUM_THREADS": "5"]) == ["5 unset unset", "5 unset unset"])
        #expect(try given(["INKWELL_THREADS": "3"]) == ["unset 3 unset", "unset 3 unset"])
        // A marker inherited from an outer launch does not make the user's count the launcher's.
        #expect(try given(["OMP_NUM_THREADS": "5", "INKWELL_LAUNCHER_THREADS": "5"]) == ["5 unset unset", "5 unset unset"])
    }

    @Test func gradientsGoInBucketsOfOneDtypeUpTo25MiB() throws {
        let big = try Tensor.zeros([4 << 20])  // 16 MiB of float32
        let small = try Tensor.zeros([10])
        let half = try Tensor.zeros([10], dtype: .float16)
        let buckets = try DataParallel.buckets([small, big, big, small, half, small])
        #expect(buckets.map { $0.map(\.count) } == [[10, 4 << 20], [4 << 20, 10], [10], [10]])
        #expect(buckets[2][0].dtype == .float16)
    }
}
