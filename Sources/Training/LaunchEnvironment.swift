// One worker's place in a data-parallel launch, from the environment torchrun (torch.distributed.run) gives its
// workers: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, and TORCHELASTIC_USE_AGENT_STORE when
// torchrun's agent already hosts the TCPStore at MASTER_PORT (then no worker may host it). `inkwell train
// --nproc N` sets the same variables for the copies it starts.
import Foundation

public struct LaunchEnvironment: Equatable, Sendable {
    public var rank: Int
    public var worldSize: Int
    /// The rank among this machine's workers: its GPU index.
    public var localRank: Int
    public var masterAddress: String
    public var masterPort: Int
    /// torchrun's agent hosts the store; otherwise rank 0 does.
    public var agentHostsStore: Bool
    /// TORCHELASTIC_RESTART_COUNT: keeps a restarted group's store keys apart from the failed attempt's.
    public var restartCount: Int

    public init(rank: Int, worldSize: Int, localRank: Int, masterAddress: String, masterPort: Int,
                agentHostsStore: Bool = false, restartCount: Int = 0) {
        self.rank = rank
        self.worldSize = worldSize
        self.localRank = localRank
        self.masterAddress = masterAddress
        self.masterPort = masterPort
        self.agentHostsStore = agentHostsStore
        self.restartCount = restartCount
    }

    /// Whether this worker starts the TCPStore.
    public var hostsStore: Bool { rank == 0 && !agentHostsStore }
    /// The prefix of this group's keys in the store.
    public var storePrefix: String { "inkwell/\(restartCount)" }

    /// The launch `environment` describes; nil when it sets neither RANK nor WORLD_SIZE (one process on its own).
    /// A variable that is missing or malformed is an error that names it.
    public static func read(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> LaunchEnvironment? {
        guard environment["RANK"] != nil || environment["WORLD_SIZE"] != nil else { return nil }
        var problems: [String] = []
        func integer(_ name: String, default fallback: Int? = nil, minimum: Int = 0) -> Int {
            guard let text = environment[name] else {
                if let fallback { return fallback }
                problems.append("\(name) is not set")
                return 0
            }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value >= minimum else {
                problems.append("\(name)=\(text) is not an integer ≥ \(minimum)")
                return 0
            }
            return value
        }
        let rank = integer("RANK"), worldSize = integer("WORLD_SIZE", minimum: 1)
        let localRank = integer("LOCAL_RANK", default: rank)
        let port = integer("MASTER_PORT", default: 29500, minimum: 1)
        let restarts = integer("TORCHELASTIC_RESTART_COUNT", default: 0)
        let address = environment["MASTER_ADDR"] ?? "127.0.0.1"
        if port > 65535 { problems.append("MASTER_PORT=\(port) is not a TCP port") }
        if problems.isEmpty && rank >= worldSize { problems.append("RANK=\(rank) is not below WORLD_SIZE=\(worldSize)") }
        guard problems.isEmpty else {
            throw LaunchError("the data-parallel launch environment is invalid: " + problems.joined(separator: "; ")
                + " (torchrun sets these variables; `inkwell train --nproc N` starts the ranks itself)")
        }
        let agentStore = ["true", "1"].contains(environment["TORCHELASTIC_USE_AGENT_STORE"]?.lowercased() ?? "")
        return LaunchEnvironment(rank: rank, worldSize: worldSize, localRank: localRank, masterAddress: address,
                                 masterPort: port, agentHostsStore: agentStore, restartCount: restarts)
    }

    /// The variables that place a worker at `rank` (what `read` reads back).
    public var variables: [String: String] {
        var out = ["RANK": String(rank), "WORLD_SIZE": String(worldSize), "LOCAL_RANK": String(localRank),
                   "MASTER_ADDR": masterAddress, "MASTER_PORT": String(masterPort)]
        if agentHostsStore { out["TORCHELASTIC_USE_AGENT_STORE"] = "True" }
        if restartCount > 0 { out["TORCHELASTIC_RESTART_COUNT"] = String(restartCount) }
        return out
    }
}

public struct LaunchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
