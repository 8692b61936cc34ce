// CPU threads on a busy machine: how many intra-op threads libtorch runs, chosen from the cores that other
// processes leave free and re-checked while long loops run. The OpenMP wait policy half is decided before
// libgomp loads, in CTorch/openmp_wait_policy.cpp.
import CTorch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// libtorch's CPU ops split work over an OpenMP team and wait at a barrier for its slowest thread. When another
/// process keeps a core busy, the thread that shares that core runs a time slice at a time, and every op waits
/// for it: a 20-step generation took ten times its quiet time. So, unless the user fixed the count, Inkwell runs
/// as many threads as there are cores that others leave free (never more than libtorch's own default), measured
/// from /proc/stat minus this process's own CPU time, and re-measured about every second of work from the
/// loops that compute (`tick()`: denoising steps, cached images, captions).
///
/// Who decides, strongest first: `--threads N`, `INKWELL_THREADS=N`, `OMP_NUM_THREADS` / `MKL_NUM_THREADS`
/// (libtorch follows them; Inkwell leaves the count alone), then the automatic choice.
///
/// A training run holds one count from its start to its end (`holdForTraining`): libtorch's CPU sums follow the
/// thread count in their last bits, so a count that followed the load would make even an uninterrupted run
/// unrepeatable. The run records it in its state, and `--resume` runs with it again unless the user fixed another
/// (`resumeCount`).
public enum CPUPacing {
    /// Who set the thread count.
    public enum Source: Equatable, Sendable, CustomStringConvertible {
        case flag(Int)
        case inkwellThreads(Int)
        /// OMP_NUM_THREADS or MKL_NUM_THREADS, as named.
        case environment(String)
        /// OMP_NUM_THREADS as `inkwell train --nproc` gives its ranks (cores / ranks): the launcher's choice, not
        /// the user's, so it counts as automatic where a run's recorded count could replace it.
        case launcher(Int)
        case automatic

        public var description: String {
            switch self {
            case .flag: "--threads"
            case .inkwellThreads: "INKWELL_THREADS"
            case .environment(let name): name
            case .launcher: "OMP_NUM_THREADS from inkwell train --nproc: the cores / the ranks"
            case .automatic: "automatic: the cores other processes leave free, re-checked every second of work; a training run holds its first choice"
            }
        }

        /// Whether the user fixed the count (a flag or a variable they set), rather than Inkwell or its launcher.
        public var isUsers: Bool {
            switch self {
            case .flag, .inkwellThreads, .environment: true
            case .launcher, .automatic: false
            }
        }

        /// Who, in a word or two (the training's log lines).
        public var label: String {
            switch self {
            case .launcher: "OMP_NUM_THREADS from --nproc"
            case .automatic: "automatic"
            default: description
            }
        }

        /// The setting to remove for the automatic choice (or the run's recorded count) to apply; nil when none.
        var setting: String? {
            switch self {
            case .flag: "--threads"
            case .inkwellThreads: "INKWELL_THREADS"
            case .environment(let name): name
            case .launcher, .automatic: nil
            }
        }
    }

    public struct InvalidSetting: Error, CustomStringConvertible {
        public let description: String
    }

    /// The environment variables, besides INKWELL_THREADS, that fix libtorch's thread count.
    public static let threadVariables = ["OMP_NUM_THREADS", "MKL_NUM_THREADS"]

    /// Set by `inkwell train --nproc` beside the OMP_NUM_THREADS it gives its ranks, to the same value: while the two
    /// agree, the count is the launcher's choice (`Source.launcher`).
    public static let launcherVariable = "INKWELL_LAUNCHER_THREADS"

    /// Who decides, from the `--threads` value (nil when not given) and the environment.
    public static func source(flag: Int?, environment: [String: String]) throws -> Source {
        if let flag {
            guard flag > 0 else { throw InvalidSetting(description: "--threads must be at least 1 (got \(flag))") }
            return .flag(flag)
        }
        if let text = environment["INKWELL_THREADS"] {
            guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n > 0 else {
                throw InvalidSetting(description: "INKWELL_THREADS must be a whole number of at least 1 (got '\(text)'); "
                                     + "unset it for the automatic choice")
            }
            return .inkwellThreads(n)
        }
        if let omp = environment["OMP_NUM_THREADS"], omp == environment[launcherVariable], let n = Int(omp), n > 0 {
            return .launcher(n)
        }
        if let name = threadVariables.first(where: { environment[$0] != nil }) { return .environment(name) }
        return .automatic
    }

    /// The thread count a resumed training run takes, from the count its state recorded (nil: saved by an older
    /// Inkwell) and who set the count in force now, `current`.
    public enum Resume: Equatable, Sendable {
        /// The user fixed none (automatic, or a launcher's share): the recorded count, for an exact resume.
        case recorded(Int)
        /// The user fixed the count the run recorded.
        case same(Int, Source)
        /// The user fixed another count: theirs wins, and the result will differ from an uninterrupted run's in the
        /// last bits.
        case differs(Int, recorded: Int, Source)
        /// Nothing recorded: the count in force.
        case unrecorded(Int, Source)

        /// The count to run with.
        public var threads: Int {
            switch self {
            case .recorded(let n), .same(let n, _), .differs(let n, _, _), .unrecorded(let n, _): n
            }
        }

        /// What the resumed run prints about it.
        public var message: String {
            switch self {
            case .recorded(let n):
                return "CPU threads: \(n), from the run's state (an exact resume needs the count the run started with)"
            case .same(let n, let source):
                return "CPU threads: \(n) (\(source.label)), as the run's state records"
            case .differs(let n, let recorded, let source):
                return "warning: CPU threads: \(n) (\(source.label)), but the run trained with \(recorded) (its state records it): "
                    + "libtorch's sums follow the thread count, so the result will differ from an uninterrupted run's in the "
                    + "last bits" + (source.setting.map { "; leave \($0) out to resume exactly" } ?? "")
            case .unrecorded(let n, let source):
                return "CPU threads: \(n) (\(source.label)); the run's state records no count (saved by an older Inkwell), "
                    + "so the result may differ from an uninterrupted run's in the last bits"
            }
        }
    }

    /// What a training run that starts from step 0 prints about the count it holds.
    public static func heldMessage(threads: Int, source: Source?) -> String {
        "CPU threads: \(threads) (\((source ?? .automatic).label)), held for the run and recorded in its state"
    }

    /// How a run resumes its thread count: the user's fixed count wins (a warning when it is not the recorded one);
    /// otherwise the recorded count replaces the automatic (or launcher's) choice. `source` nil: nobody called `start`
    /// (a library host), taken as automatic.
    public static func resumeCount(recorded: Int?, source: Source?, current: Int) -> Resume {
        let source = source ?? .automatic
        guard let recorded else { return .unrecorded(current, source) }
        guard source.isUsers else { return .recorded(recorded) }
        let chosen: Int
        switch source {
        case .flag(let n), .inkwellThreads(let n): chosen = n
        default: chosen = current  // OMP_NUM_THREADS / MKL_NUM_THREADS: libtorch read them
        }
        return chosen == recorded ? .same(chosen, source) : .differs(chosen, recorded: recorded, source)
    }

    /// The threads to run when other processes keep `othersBusy` cores' worth of CPU time busy, out of
    /// `usableCores` (the affinity mask, within a cgroup quota), never more than `ceiling` (libtorch's default,
    /// one per physical core). A core counts as taken when others use more than 40 % of it: a thread sharing it
    /// would run a slice at a time and stall every op's barrier.
    public static func threads(othersBusy: Double, usableCores: Int, ceiling: Int) -> Int {
        let taken = Int((max(0, othersBusy) + 0.6).rounded(.down))
        return max(1, min(ceiling, usableCores - taken))
    }

    // MARK: Readings

    /// One reading of the machine: monotonic time, the busy CPU time of the CPUs this process may run on
    /// (everyone's), and this process's own CPU time, in seconds.
    public struct Sample: Equatable, Sendable {
        public var time: Double, busy: Double, own: Double
        public init(time: Double, busy: Double, own: Double) {
            self.time = time
            self.busy = busy
            self.own = own
        }

        /// The cores' worth of CPU time that other processes used between `earlier` and this reading.
        public func othersBusy(since earlier: Sample) -> Double {
            let seconds = time - earlier.time
            guard seconds > 0 else { return 0 }
            return max(0, ((busy - earlier.busy) - (own - earlier.own)) / seconds)
        }
    }

    /// The busy seconds of the `cpus` in a /proc/stat text (user, nice, system, irq, softirq and steal; not idle
    /// or iowait), `ticksPerSecond` being USER_HZ. nil when no line for those CPUs is there.
    public static func busySeconds(procStat: String, cpus: Set<Int>, ticksPerSecond: Double) -> Double? {
        var ticks = 0.0, found = false
        for line in procStat.split(separator: "\n") where line.hasPrefix("cpu") {
            let fields = line.split(separator: " ")
            guard let id = Int(fields[0].dropFirst(3)), cpus.contains(id), fields.count >= 9 else { continue }
            let values = fields[1...8].map { Double($0) ?? 0 }
            ticks += values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
            found = true
        }
        return found ? ticks / ticksPerSecond : nil
    }

    /// The CPUs of a list like /proc/self/status's `Cpus_allowed_list` ("0-3,8,10-11").
    public static func cpuList(_ text: String) -> Set<Int> {
        var cpus = Set<Int>()
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: "-").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if bounds.count == 1 { cpus.insert(bounds[0]) }
            if bounds.count == 2, bounds[0] <= bounds[1] { cpus.formUnion(bounds[0]...bounds[1]) }
        }
        return cpus
    }

    /// The whole cores a cgroup v2 `cpu.max` ("QUOTA PERIOD", or "max PERIOD") allows; nil when unlimited.
    /// Rounded down: a thread beyond the quota would be throttled a period at a time, as on a busy core.
    public static func quotaCores(cpuMax: String) -> Int? {
        let fields = cpuMax.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, let quota = Double(fields[0]), let period = Double(fields[1]), period > 0 else { return nil }
        return max(1, Int(quota / period))
    }

    /// The CPUs this process may run on (its affinity mask), and how many it may use at once (the mask,
    /// within the cgroup's quota, the tightest of its cgroup and the cgroups above it that are visible).
    static func capacity() -> (cpus: Set<Int>, usable: Int) {
        let status = procText("/proc/self/status") ?? ""
        var cpus = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
            .map { cpuList(String($0.dropFirst("Cpus_allowed_list:".count))) } ?? []
        if cpus.isEmpty { cpus = Set(0..<ProcessInfo.processInfo.activeProcessorCount) }
        var usable = cpus.count
        let membership = procText("/proc/self/cgroup") ?? ""
        if let line = membership.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) {
            var path = String(line.dropFirst(3))
            while true {
                let file = "/sys/fs/cgroup" + (path == "/" ? "" : path) + "/cpu.max"
                if let text = procText(file), let cores = quotaCores(cpuMax: text) {
                    usable = min(usable, cores)
                }
                guard path != "/", !path.isEmpty else { break }
                path = (path as NSString).deletingLastPathComponent
            }
        }
        return (cpus, max(1, usable))
    }

    /// A /proc or /sys file, whole: Foundation's String(contentsOfFile:) stops at 4 KiB for them (their size reads
    /// as 0), which would drop the CPU lines of /proc/stat past the first few dozen cores.
    static func procText(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static func seconds(_ clock: clockid_t) -> Double {
        var now = timespec()
        clock_gettime(clock, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// A reading of this machine now; nil where /proc/stat cannot be read (then the count stays as it is).
    static func sample(cpus: Set<Int>) -> Sample? {
        guard let text = procText("/proc/stat"),
              let busy = busySeconds(procStat: text, cpus: cpus, ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))))
        else { return nil }
        return Sample(time: seconds(CLOCK_MONOTONIC), busy: busy, own: seconds(CLOCK_PROCESS_CPUTIME_ID))
    }

    // MARK: The process's pacer

    /// Re-measures and applies the automatic choice, from readings it is given (the process's own pacer reads
    /// /proc; tests give simulated ones).
    public final class Pacer: @unchecked Sendable {
        /// The first decision waits for this much of a window (enough /proc/stat ticks to tell a busy core);
        /// later ones come every `recheck` seconds.
        public static let firstWindow = 0.1, recheck = 1.0
        public let usableCores: Int, ceiling: Int
        public private(set) var threads: Int
        /// The last window's measurement of other processes' load, in cores; nil before the first decision.
        public private(set) var othersBusy: Double?
        /// Set while a training run holds the count: `tick` then measures nothing and changes nothing.
        public private(set) var held = false
        private var last: Sample
        private let read: () -> Sample?
        private let apply: (Int) -> Void
        private let lock = NSLock()

        public init(usableCores: Int, ceiling: Int, start: Sample, read: @escaping () -> Sample?, apply: @escaping (Int) -> Void) {
            self.usableCores = usableCores
            self.ceiling = ceiling
            self.threads = min(ceiling, usableCores)
            self.last = start
            self.read = read
            self.apply = apply
        }

        /// Called from the loops that compute, as often as they like: measures when a window is due, and sets the
        /// thread count when it changes. Returns the count in force.
        @discardableResult
        public func tick(now: Double) -> Int {
            lock.lock()
            defer { lock.unlock() }
            guard !held, now - last.time >= (othersBusy == nil ? Self.firstWindow : Self.recheck), let reading = read() else { return threads }
            decide(reading)
            return threads
        }

        /// When the first decision is due (the first window's end); a caller about to hold waits for it.
        public var firstDecisionDue: Double? { lock.withLock { othersBusy == nil ? last.time + Self.firstWindow : nil } }

        /// Stops re-pacing, after a first decision if none was made yet (from however long a window there was).
        /// Returns the count held.
        @discardableResult
        public func hold(now: Double) -> Int {
            lock.lock()
            defer { lock.unlock() }
            if !held, othersBusy == nil, now > last.time, let reading = read() { decide(reading) }
            held = true
            return threads
        }

        /// Holds `count` instead of the pacer's choice (a resumed run's recorded count).
        public func hold(_ count: Int) {
            lock.withLock {
                held = true
                threads = count
            }
        }

        /// Paces again; the next window starts now.
        public func release() {
            lock.withLock {
                guard held else { return }
                held = false
                if let reading = read() { last = reading }
            }
        }

        private func decide(_ reading: Sample) {
            let others = reading.othersBusy(since: last)
            last = reading
            othersBusy = others
            let chosen = CPUPacing.threads(othersBusy: others, usableCores: usableCores, ceiling: ceiling)
            if chosen != threads {
                threads = chosen
                apply(chosen)
            }
        }
    }

    private static let state = Shared()
    private final class Shared: @unchecked Sendable {
        let lock = NSLock()
        var source: Source?
        var pacer: Pacer?
        /// The count before a hold where no pacer takes over after it (restored by `release`).
        var beforeHold: Int?
    }

    /// Decides who sets the thread count and applies it; the automatic choice takes its first reading now.
    /// Called once when a command starts (again, it starts over). Throws `InvalidSetting` for a bad
    /// `--threads` or INKWELL_THREADS.
    public static func start(flag: Int?, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let source = try source(flag: flag, environment: environment)
        let ceiling = libtorchDefault
        var pacer: Pacer?
        switch source {
        case .flag(let n), .inkwellThreads(let n): Threads.count = n
        case .environment, .launcher: break  // libtorch read OMP_NUM_THREADS / MKL_NUM_THREADS
        case .automatic:
            let (cpus, usable) = capacity()
            if let start = sample(cpus: cpus) {
                pacer = Pacer(usableCores: usable, ceiling: ceiling, start: start, read: { sample(cpus: cpus) },
                              apply: { Threads.count = $0 })
                if let pacer { Threads.count = pacer.threads }
            }
        }
        state.lock.withLock {
            state.source = source
            state.pacer = pacer
        }
    }

    /// Re-checks the automatic choice when a window is due (about once a second; a clock read otherwise). Call it
    /// from the computing thread: libtorch's count belongs to the thread that sets it.
    public static func tick() {
        guard let pacer = state.lock.withLock({ state.pacer }) else { return }
        pacer.tick(now: seconds(CLOCK_MONOTONIC))
    }

    /// Holds the count in force for a training run, on its computing thread: the automatic choice is made once (after
    /// its first window, waited out here if need be: at most 0.1 s) and then no longer follows the load until
    /// `release`. A fixed count (flag, variables, launcher) is held as it is. Returns the count held.
    @discardableResult
    public static func holdForTraining() -> Int {
        let pacer = state.lock.withLock {
            if state.pacer == nil, state.beforeHold == nil { state.beforeHold = Threads.count }
            return state.pacer
        }
        guard let pacer else { return Threads.count }
        if let due = pacer.firstDecisionDue {
            let wait = due - seconds(CLOCK_MONOTONIC)
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
        }
        let held = pacer.hold(now: seconds(CLOCK_MONOTONIC))
        Threads.count = held
        return held
    }

    /// Holds `count` (a resumed run's recorded count) on the calling thread, the computing one, until `release`.
    public static func hold(threads count: Int) {
        let pacer = state.lock.withLock {
            if state.pacer == nil, state.beforeHold == nil { state.beforeHold = Threads.count }
            return state.pacer
        }
        pacer?.hold(count)
        Threads.count = count
    }

    /// Ends a hold: the automatic choice follows the load again (the pipeline's later stages); without it, the count
    /// before the hold comes back.
    public static func release() {
        let (pacer, before) = state.lock.withLock {
            defer { state.beforeHold = nil }
            return (state.pacer, state.beforeHold)
        }
        if let pacer { pacer.release() } else if let before { Threads.count = before }
    }

    /// Whether a training run holds the count now.
    public static var isHeld: Bool { state.lock.withLock { state.pacer?.held ?? (state.beforeHold != nil) } }

    /// libtorch's own count (one thread per physical core, or what OMP_NUM_THREADS says), read before
    /// anything here changes it.
    public static let libtorchDefault = Threads.count

    /// Who set the thread count; nil before `start`.
    public static var source: Source? { state.lock.withLock { state.source } }

    /// The automatic pacer's state (usable cores, libtorch's default, the last load measured); nil unless automatic.
    public static var pacer: Pacer? { state.lock.withLock { state.pacer } }

    /// True when this process started libgomp with OMP_WAIT_POLICY=PASSIVE itself (the user set no wait policy).
    public static var choseWaitPolicy: Bool { ct_openmp_wait_policy_chosen() == 1 }

    /// The OpenMP wait policy libgomp runs under, and who chose it.
    public static var waitPolicy: String {
        if choseWaitPolicy { return "passive (Inkwell's choice; OMP_WAIT_POLICY or GOMP_SPINCOUNT overrides it)" }
        let env = ProcessInfo.processInfo.environment
        if let policy = env["OMP_WAIT_POLICY"] { return "\(policy.lowercased()) (OMP_WAIT_POLICY)" }
        if let count = env["GOMP_SPINCOUNT"] { return "spin \(count) (GOMP_SPINCOUNT)" }
        return "libgomp's default"
    }
}
