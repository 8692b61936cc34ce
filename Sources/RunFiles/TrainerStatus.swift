// <run>/status.json: what the trainer is doing now, so that a reader (the dashboard) knows instead of
// guessing from the age of log.csv. The trainer rewrites it atomically when it starts, every few seconds
// while it works (the heartbeat) and once more when it ends: finished, stopped by the user (and by which
// signal), or failed (with the error). A process killed outright cannot write its end, so a reader treats a
// "running" status whose heartbeat is old, or whose process is gone on this host, as not responding.
import AtomicFile
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct TrainerStatus: Codable, Equatable, Sendable {
    public static let fileName = "status.json"

    /// The trainer's state; what it was when the process ended, if it has ended.
    public enum State: Equatable, Sendable {
        case running
        /// Stopped on request (Ctrl-C, SIGTERM, SIGHUP, or a caller's stop hook); resumable with `--resume`.
        case stopped(signal: String?)
        case finished
        case failed(error: String)

        /// The name the file stores.
        public var name: String {
            switch self {
            case .running: return "running"
            case .stopped: return "stopped"
            case .finished: return "finished"
            case .failed: return "failed"
            }
        }
    }

    public var state: State
    public var step: Int
    public var totalSteps: Int
    /// Optimizer steps per second over this session so far, evaluation time included; nil before its first step.
    public var stepsPerSecond: Double?
    /// Seconds to `totalSteps` at `stepsPerSecond`; nil while the rate is unknown and once the run has ended.
    public var etaSeconds: Double?
    /// Training time over every session of the run (resumed sessions add up), as state/trainer.json counts it.
    public var elapsedSeconds: Double
    public var pid: Int32
    public var host: String
    /// When this session (this process's `run`) started.
    public var startedAt: Date
    /// When the file was last written.
    public var heartbeat: Date

    public init(state: State, step: Int, totalSteps: Int, stepsPerSecond: Double? = nil, etaSeconds: Double? = nil,
                elapsedSeconds: Double, pid: Int32 = ProcessInfo.processInfo.processIdentifier,
                host: String = TrainerStatus.currentHost, startedAt: Date, heartbeat: Date = Date()) {
        self.state = state
        self.step = step
        self.totalSteps = totalSteps
        self.stepsPerSecond = stepsPerSecond
        self.etaSeconds = etaSeconds
        self.elapsedSeconds = elapsedSeconds
        self.pid = pid
        self.host = host
        self.startedAt = startedAt
        self.heartbeat = heartbeat
    }

    /// This machine's name, as the trainer records it and a reader compares it. gethostname, not
    /// ProcessInfo.hostName, which may wait on DNS.
    public static var currentHost: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: File

    public func encoded() throws -> Data {
        let json = JSONEncoder()
        json.outputFormatting = [.prettyPrinted, .sortedKeys]
        json.dateEncodingStrategy = .iso8601
        json.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try json.encode(self)
    }

    public init(decoding data: Data) throws {
        let json = JSONDecoder()
        json.dateDecodingStrategy = .iso8601
        json.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        self = try json.decode(TrainerStatus.self, from: data)
    }

    public func write(_ folder: RunFolder) throws {
        try writeAtomically(try encoded(), to: folder.status)
    }

    /// The status of the run at `folder`; nil when it has none (a run from before status.json, or one
    /// that has not started) or the file is unreadable.
    public static func read(_ folder: RunFolder) -> TrainerStatus? {
        guard let data = FileManager.default.contents(atPath: folder.status.path) else { return nil }
        return try? TrainerStatus(decoding: data)
    }

    // MARK: Coding

    /// The state is flat in the file: `"state": "stopped", "signal": "SIGTERM"`, `"state": "failed", "error": "…"`.
    enum CodingKeys: String, CodingKey {
        case state, signal, error, step, totalSteps, stepsPerSecond, etaSeconds, elapsedSeconds, pid, host, startedAt, heartbeat
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .state) {
        case "running": state = .running
        case "stopped": state = .stopped(signal: try c.decodeIfPresent(String.self, forKey: .signal))
        case "finished": state = .finished
        case "failed": state = .failed(error: try c.decodeIfPresent(String.self, forKey: .error) ?? "")
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .state, in: c,
                                                   debugDescription: "unknown state '\(other)' (running, stopped, finished, failed)")
        }
        step = try c.decode(Int.self, forKey: .step)
        totalSteps = try c.decode(Int.self, forKey: .totalSteps)
        stepsPerSecond = try c.decodeIfPresent(Double.self, forKey: .stepsPerSecond)
        etaSeconds = try c.decodeIfPresent(Double.self, forKey: .etaSeconds)
        elapsedSeconds = try c.decode(Double.self, forKey: .elapsedSeconds)
        pid = try c.decode(Int32.self, forKey: .pid)
        host = try c.decode(String.self, forKey: .host)
        startedAt = try c.decode(Date.self, forKey: .startedAt)
        heartbeat = try c.decode(Date.self, forKey: .heartbeat)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(state.name, forKey: .state)
        switch state {
        case .stopped(let signal): try c.encodeIfPresent(signal, forKey: .signal)
        case .failed(let error): try c.encode(error, forKey: .error)
        case .running, .finished: break
        }
        try c.encode(step, forKey: .step)
        try c.encode(totalSteps, forKey: .totalSteps)
        try c.encodeIfPresent(stepsPerSecond, forKey: .stepsPerSecond)
        try c.encodeIfPresent(etaSeconds, forKey: .etaSeconds)
        try c.encode(elapsedSeconds, forKey: .elapsedSeconds)
        try c.encode(pid, forKey: .pid)
        try c.encode(host, forKey: .host)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(heartbeat, forKey: .heartbeat)
    }
}
