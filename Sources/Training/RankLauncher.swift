// `inkwell train --nproc N`: starts N copies of this program on this machine, each with the environment
// torchrun would give it (LaunchEnvironment: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1 and a free
// MASTER_PORT), and supervises them as torchrun does: when one fails the others are stopped (SIGTERM, then
// SIGKILL after a grace period), and Ctrl-C / SIGTERM / SIGHUP sent to the launcher reach every rank once
// (relayed by the command's own signal handling), so they stop together at the same step. The ranks get process groups of their own, so a terminal's Ctrl-C
// reaches them only through the launcher, never twice. A launcher that dies without passing anything on
// (SIGKILL, OOM killer) takes its ranks with it: each asks the kernel for a signal when its parent dies
// (PR_SET_PDEATHSIG), and stops as after Ctrl-C, saving its state.
import CProcess
import Foundation
import Torch
#if canImport(Glibc)
import Glibc
#endif

public final class RankLauncher: @unchecked Sendable {
    public struct Outcome: Sendable {
        /// The status the launcher exits with: 0, or the first failed rank's (128 + signal when killed).
        public var status: Int32
        /// What went wrong, naming the rank; nil when every rank exited 0.
        public var failure: String?
    }

    let executable: String
    let arguments: [String]
    let count: Int
    let environment: [String: String]
    /// Seconds the other ranks get to exit after one failed, before SIGKILL.
    let grace: TimeInterval

    private let lock = NSLock()
    private var children: [Int32: Int] = [:]  // pid → rank, while running

    /// `arguments` are the ranks' arguments (without the program name).
    public init(executable: String, arguments: [String], count: Int, environment: [String: String] = ProcessInfo.processInfo.environment,
                grace: TimeInterval = 30) {
        self.executable = executable
        self.arguments = arguments
        self.count = count
        self.environment = environment
        self.grace = grace
    }

    /// The variable that tells a rank its launcher's pid, for `followLauncher`.
    static let launcherPIDVariable = "INKWELL_LAUNCHER_PID"

    /// The signal a rank gets when its launcher dies. Not SIGTERM: the kernel sends it at every reparenting, once
    /// per launcher thread that exits, and a second SIGTERM means "quit now"; a stop request is asked once.
    public static let launcherDiedSignal = SIGUSR1

    /// In a rank this launcher started: asks the kernel for `launcherDiedSignal` when the launcher dies
    /// (PR_SET_PDEATHSIG; the rank then stops after the step and saves its state, as after Ctrl-C), and sends it at
    /// once if the launcher died before this call. Until the command takes the signal as a stop request, its
    /// default action ends the rank. Returns false (and does nothing) in a process started otherwise (torchrun's
    /// agent supervises its own workers).
    public static func followLauncher() -> Bool {
        guard let text = getenv(launcherPIDVariable).map({ String(cString: $0) }), let launcher = Int32(text) else { return false }
        unsetenv(launcherPIDVariable)  // not for processes this rank starts
        _ = cp_set_parent_death_signal(launcherDiedSignal)
        if getppid() != launcher { kill(getpid(), launcherDiedSignal) }
        return true
    }

    /// This program's own executable, as the kernel knows it.
    public static func currentExecutable() throws -> String {
        try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    }

    /// A TCP port on 127.0.0.1 that is free now (the kernel's choice for port 0), for MASTER_PORT.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LaunchError("cannot open a socket to find a free port: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw LaunchError("cannot find a free TCP port on 127.0.0.1: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The command's signal handling (one owner per process: a second handler for a signal would replace the
    /// first), passing each signal it gets on to the receiver it is given; nil: to nobody any more.
    public typealias SignalRelay = ((@Sendable (Int32) -> Void)?) -> Void

    /// Starts the ranks and waits for all of them. Ctrl-C / SIGTERM / SIGHUP reach every rank through `relay`,
    /// the command's own handling, while the ranks run.
    public func run(relay: SignalRelay) throws -> Outcome {
        let port = try Self.freePort()
        relay { [self] number in signalAll(number) }
        defer { relay(nil) }
        // torchrun's default: the ranks share the cores instead of each taking all of them (OMP_NUM_THREADS, which
        // libtorch's CPU thread pool follows), unless the user fixed the count (INKWELL_THREADS wins over it in the
        // ranks; `--threads` is passed on in their arguments). The marker beside it tells the ranks the count is the
        // launcher's, not the user's: a resumed run's recorded count replaces it.
        var shared = environment
        shared[CPUPacing.launcherVariable] = nil
        shared[Self.launcherPIDVariable] = String(getpid())
        if shared["OMP_NUM_THREADS"] == nil && shared["INKWELL_THREADS"] == nil {
            let share = String(max(1, ProcessInfo.processInfo.activeProcessorCount / count))
            shared["OMP_NUM_THREADS"] = share
            shared[CPUPacing.launcherVariable] = share
        }
        for rank in 0..<count {
            let place = LaunchEnvironment(rank: rank, worldSize: count, localRank: rank, masterAddress: "127.0.0.1", masterPort: port)
            do {
                let pid = try spawn(shared.merging(place.variables) { $1 })
                lock.withLock { children[pid] = rank }
            } catch {
                signalAll(SIGKILL)
                _ = waitAll()
                throw error
            }
        }
        return waitAll()
    }

    /// Reaps every rank; after the first failure stops the rest.
    private func waitAll() -> Outcome {
        var outcome = Outcome(status: 0, failure: nil)
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid < 0 {
                if errno == EINTR { continue }
                return outcome  // ECHILD: none left
            }
            guard let rank = lock.withLock({ children.removeValue(forKey: pid) }) else { continue }
            let signal = status & 0x7f, code = (status >> 8) & 0xff
            guard signal != 0 || code != 0, outcome.failure == nil else { continue }
            let how = signal != 0 ? "was killed by \(String(cString: strsignal(signal))) (signal \(signal))" : "exited with status \(code)"
            outcome = Outcome(status: signal != 0 ? 128 + signal : code,
                              failure: "rank \(rank) of \(count) (pid \(pid)) \(how); stopping the other ranks")
            FileHandle.standardError.write(Data("inkwell train --nproc: \(outcome.failure ?? "")\n".utf8))
            signalAll(SIGTERM)
            DispatchQueue.global().asyncAfter(deadline: .now() + grace) { [self] in signalAll(SIGKILL) }
        }
    }

    private func signalAll(_ number: Int32) {
        for pid in lock.withLock({ Array(children.keys) }) { kill(pid, number) }
    }

    private func spawn(_ environment: [String: String]) throws -> Int32 {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A process group of its own (Ctrl-C comes through the launcher), default dispositions for the signals the
        // launcher ignores (an ignored signal stays ignored across exec), and nothing blocked.
        var defaults = sigset_t(), none = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&defaults, number) }
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, nil, &attributes, argv, envp)
        guard result == 0 else {
            throw LaunchError("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        return pid
    }
}
