// CPU threads on a busy machine (CPUPacing, CTorch/openmp_wait_policy.cpp): who decides the count, what the
// automatic choice picks from simulated /proc readings, that it reaches libtorch, and what libgomp itself reports
// in a spawned `inkwell` (OMP_DISPLAY_ENV). No timings: bench-load measures the effect.
import Foundation
import Testing
import TestSupport
@testable import Torch

@Suite(.serialized) struct CPUPacingTests {
    // MARK: Who decides

    @Test func strongestSettingWins() throws {
        let all = ["INKWELL_THREADS": "3", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "5"]
        #expect(try CPUPacing.source(flag: 4, environment: all) == .flag(4))
        #expect(try CPUPacing.source(flag: nil, environment: all) == .inkwellThreads(3))
        #expect(try CPUPacing.source(flag: nil, environment: ["OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "5"]) == .environment("OMP_NUM_THREADS"))
        #expect(try CPUPacing.source(flag: nil, environment: ["MKL_NUM_THREADS": "5"]) == .environment("MKL_NUM_THREADS"))
        #expect(try CPUPacing.source(flag: nil, environment: ["PATH": "/bin"]) == .automatic)
    }

    /// `inkwell train --nproc` marks the OMP_NUM_THREADS share it gives its ranks: the launcher's, not the user's.
    @Test func theLaunchersShareIsNotTheUsers() throws {
        let launched = ["OMP_NUM_THREADS": "1", CPUPacing.launcherVariable: "1"]
        #expect(try CPUPacing.source(flag: nil, environment: launched) == .launcher(1))
        #expect(try CPUPacing.source(flag: nil, environment: ["OMP_NUM_THREADS": "2", CPUPacing.launcherVariable: "1"])
                == .environment("OMP_NUM_THREADS"))
        #expect(try CPUPacing.source(flag: nil, environment: [CPUPacing.launcherVariable: "1"]) == .automatic)
        #expect(try CPUPacing.source(flag: nil, environment: launched.merging(["INKWELL_THREADS": "3"]) { $1 }) == .inkwellThreads(3))
        #expect(try CPUPacing.source(flag: 2, environment: launched) == .flag(2))
        #expect(!CPUPacing.Source.launcher(1).isUsers && !CPUPacing.Source.automatic.isUsers)
        #expect(CPUPacing.Source.flag(1).isUsers && CPUPacing.Source.inkwellThreads(1).isUsers
                && CPUPacing.Source.environment("MKL_NUM_THREADS").isUsers)
    }

    /// A resumed run's count: the recorded one unless the user fixed one; theirs wins, with a warning when it differs.
    @Test func resumeTakesTheRecordedCountUnlessTheUserFixedOne() {
        typealias R = CPUPacing.Resume
        // Nobody's choice (automatic, the launcher's share, or no `start` at all): the recorded count, whatever runs now.
        #expect(CPUPacing.resumeCount(recorded: 2, source: .automatic, current: 1) == .recorded(2))
        #expect(CPUPacing.resumeCount(recorded: 2, source: .launcher(1), current: 1) == .recorded(2))
        #expect(CPUPacing.resumeCount(recorded: 3, source: nil, current: 2) == .recorded(3))
        // The user's count wins.
        #expect(CPUPacing.resumeCount(recorded: 2, source: .flag(1), current: 1) == .differs(1, recorded: 2, .flag(1)))
        #expect(CPUPacing.resumeCount(recorded: 2, source: .inkwellThreads(4), current: 4) == .differs(4, recorded: 2, .inkwellThreads(4)))
        #expect(CPUPacing.resumeCount(recorded: 2, source: .flag(2), current: 2) == .same(2, .flag(2)))
        // OMP_NUM_THREADS / MKL_NUM_THREADS: the count libtorch took from them.
        #expect(CPUPacing.resumeCount(recorded: 2, source: .environment("OMP_NUM_THREADS"), current: 3)
                == .differs(3, recorded: 2, .environment("OMP_NUM_THREADS")))
        #expect(CPUPacing.resumeCount(recorded: 2, source: .environment("MKL_NUM_THREADS"), current: 2) == .same(2, .environment("MKL_NUM_THREADS")))
        // An older state records none: the count in force.
        #expect(CPUPacing.resumeCount(recorded: nil, source: .automatic, current: 2) == .unrecorded(2, .automatic))
        #expect(CPUPacing.resumeCount(recorded: nil, source: .flag(1), current: 1) == .unrecorded(1, .flag(1)))

        #expect(R.recorded(2).message == "CPU threads: 2, from the run's state (an exact resume needs the count the run started with)")
        let warning = R.differs(1, recorded: 2, .flag(1)).message
        #expect(warning.hasPrefix("warning: CPU threads: 1 (--threads), but the run trained with 2"), "\(warning)")
        #expect(warning.contains("differ from an uninterrupted run's in the last bits") && warning.contains("leave --threads out"))
        #expect(R.differs(3, recorded: 2, .environment("OMP_NUM_THREADS")).message.contains("leave OMP_NUM_THREADS out"))
        #expect(!R.same(2, .flag(2)).message.contains("warning"))
        #expect(R.unrecorded(2, .automatic).message.contains("records no count"))
    }

    @Test func badSettingsAreNamed() {
        for bad in ["0", "-2", "two", ""] {
            let error = #expect(throws: CPUPacing.InvalidSetting.self) { try CPUPacing.source(flag: nil, environment: ["INKWELL_THREADS": bad]) }
            #expect(error?.description.contains("INKWELL_THREADS") == true)
        }
        let error = #expect(throws: CPUPacing.InvalidSetting.self) { try CPUPacing.source(flag: 0, environment: [:]) }
        #expect(error?.description.contains("--threads") == true)
    }

    // MARK: The automatic choice

    @Test func threadsAreTheCoresOthersLeaveFree() {
        // Quiet: libtorch's default (the ceiling), never more than the usable cores.
        #expect(CPUPacing.threads(othersBusy: 0, usableCores: 2, ceiling: 2) == 2)
        #expect(CPUPacing.threads(othersBusy: 0.05, usableCores: 16, ceiling: 8) == 8)
        #expect(CPUPacing.threads(othersBusy: 0, usableCores: 2, ceiling: 16) == 2)
        // One core of two taken (fully, or shared with our threads so that the hog got 2/3 of it): one thread.
        #expect(CPUPacing.threads(othersBusy: 1.0, usableCores: 2, ceiling: 2) == 1)
        #expect(CPUPacing.threads(othersBusy: 0.67, usableCores: 2, ceiling: 2) == 1)
        // A core counts as taken above 40 % of it; never fewer than one thread.
        #expect(CPUPacing.threads(othersBusy: 0.3, usableCores: 2, ceiling: 2) == 2)
        #expect(CPUPacing.threads(othersBusy: 2.5, usableCores: 8, ceiling: 8) == 5)
        #expect(CPUPacing.threads(othersBusy: 7.9, usableCores: 4, ceiling: 4) == 1)
        // Hyperthreads: 16 logical CPUs, 8 physical cores (libtorch's default); a hog on one CPU leaves 8 threads.
        #expect(CPUPacing.threads(othersBusy: 1, usableCores: 16, ceiling: 8) == 8)
    }

    @Test func readingsAreParsed() throws {
        let stat = """
        cpu  5000 10 2000 90000 300 0 40 0 0 0
        cpu0 1000 0 500 45000 100 0 20 5 0 0
        cpu1 4000 10 1500 45000 200 0 20 0 0 0
        cpu10 7 0 0 100 0 0 0 0 0 0
        intr 12345 0 0
        ctxt 999
        """
        // user + nice + system + irq + softirq + steal, in USER_HZ ticks; the aggregate line and other CPUs left out.
        #expect(CPUPacing.busySeconds(procStat: stat, cpus: [0], ticksPerSecond: 100) == 15.25)
        #expect(CPUPacing.busySeconds(procStat: stat, cpus: [0, 1], ticksPerSecond: 100) == 70.55)
        #expect(CPUPacing.busySeconds(procStat: stat, cpus: [10], ticksPerSecond: 100) == 0.07)
        #expect(CPUPacing.busySeconds(procStat: stat, cpus: [3], ticksPerSecond: 100) == nil)
        #expect(CPUPacing.cpuList("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11])
        #expect(CPUPacing.cpuList(" 5") == [5])
        #expect(CPUPacing.quotaCores(cpuMax: "max 100000\n") == nil)
        #expect(CPUPacing.quotaCores(cpuMax: "250000 100000\n") == 2)
        #expect(CPUPacing.quotaCores(cpuMax: "50000 100000") == 1)
        // This machine's own files read: the real /proc/stat has a line for every CPU this process may use.
        let (cpus, usable) = CPUPacing.capacity()
        #expect(!cpus.isEmpty && usable >= 1 && usable <= cpus.count)
        #expect(CPUPacing.sample(cpus: cpus) != nil)
    }

    @Test func othersLoadIsTheBusyTimeThatIsNotOurs() {
        let a = CPUPacing.Sample(time: 10, busy: 100, own: 5)
        // In 2 s: 3.6 CPU-seconds busy on our CPUs, 1.6 of them ours: others kept 1 core busy.
        #expect(abs(CPUPacing.Sample(time: 12, busy: 103.6, own: 6.6).othersBusy(since: a) - 1.0) < 1e-9)
        // Tick-sampled busy time can lag our precise own time: never below zero.
        #expect(CPUPacing.Sample(time: 11, busy: 100.5, own: 6).othersBusy(since: a) == 0)
    }

    /// A pacer fed simulated readings of a 2-core machine on which another process starts, then stops, spinning.
    @Test func pacerFollowsTheLoadAtItsPace() {
        var now = 0.0, ownRate = 2.0, othersRate = 0.0
        var reading = CPUPacing.Sample(time: 0, busy: 0, own: 0)
        func advance(_ seconds: Double) {
            now += seconds
            reading = CPUPacing.Sample(time: now, busy: reading.busy + (ownRate + othersRate) * seconds, own: reading.own + ownRate * seconds)
        }
        var applied: [Int] = []
        let pacer = CPUPacing.Pacer(usableCores: 2, ceiling: 2, start: reading, read: { reading }, apply: { applied.append($0) })
        #expect(pacer.threads == 2 && pacer.othersBusy == nil)

        // A hog starts; before the first window (0.1 s) nothing is measured.
        othersRate = 0.7
        advance(0.05)
        #expect(pacer.tick(now: now) == 2)
        advance(0.1)
        #expect(pacer.tick(now: now) == 1)
        #expect(applied == [1])
        #expect(abs((pacer.othersBusy ?? 0) - 0.7) < 1e-9)

        // Then re-checked only once a second: the hog leaving is seen at the next recheck.
        ownRate = 1
        othersRate = 0
        advance(0.5)
        #expect(pacer.tick(now: now) == 1)
        advance(0.6)
        #expect(pacer.tick(now: now) == 2)
        #expect(applied == [1, 2])

        // Unreadable /proc: the count stays.
        let blind = CPUPacing.Pacer(usableCores: 2, ceiling: 2, start: reading, read: { nil }, apply: { applied.append($0) })
        #expect(blind.tick(now: now + 5) == 2)
        #expect(applied == [1, 2])
    }

    /// A training run holds the count: a first decision from the window so far if none was made, then no re-pacing
    /// whatever the load does, until released.
    @Test func holdStopsRePacing() {
        var now = 0.0, othersRate = 0.0
        var reading = CPUPacing.Sample(time: 0, busy: 0, own: 0)
        func advance(_ seconds: Double) {
            now += seconds
            reading = CPUPacing.Sample(time: now, busy: reading.busy + (1 + othersRate) * seconds, own: reading.own + seconds)
        }
        var applied: [Int] = []
        let pacer = CPUPacing.Pacer(usableCores: 2, ceiling: 2, start: reading, read: { reading }, apply: { applied.append($0) })
        #expect(pacer.firstDecisionDue == CPUPacing.Pacer.firstWindow)
        // A hog is there from the start: the hold decides from what it saw (one core taken), then holds.
        othersRate = 1
        advance(0.2)
        #expect(pacer.hold(now: now) == 1 && pacer.held)
        #expect(applied == [1] && pacer.firstDecisionDue == nil)
        // The hog leaves: a free pacer would take the core back at its next recheck; a held one does not look.
        othersRate = 0
        for _ in 0..<10 {
            advance(1.5)
            #expect(pacer.tick(now: now) == 1)
        }
        #expect(applied == [1])
        // Released, it paces again from a fresh window.
        pacer.release()
        #expect(!pacer.held)
        advance(0.5)
        #expect(pacer.tick(now: now) == 1)
        advance(0.6)
        #expect(pacer.tick(now: now) == 2)
        #expect(applied == [1, 2])

        // A given count (a resumed run's recorded one) replaces the pacer's, and the load does not move it either.
        pacer.hold(1)
        othersRate = 0
        advance(2)
        #expect(pacer.tick(now: now) == 1)
        // Holding after a decision measures nothing more.
        let second = CPUPacing.Pacer(usableCores: 2, ceiling: 2, start: reading, read: { reading }, apply: { applied.append($0) })
        advance(0.2)
        #expect(second.tick(now: now) == 2)
        othersRate = 1
        advance(0.05)
        #expect(second.hold(now: now) == 2)
        advance(3)
        #expect(second.tick(now: now) == 2)
    }

    /// Without a pacer (nobody called `start`: a library host), a hold sets libtorch's count and its release puts the
    /// count before it back.
    @Test func holdWithoutAPacerRestoresTheCount() throws {
        try #require(CPUPacing.pacer == nil, "the test process calls no CPUPacing.start")
        let before = Threads.count
        defer { Threads.count = before }
        Threads.count = 3
        #expect(CPUPacing.holdForTraining() == 3 && CPUPacing.isHeld)
        CPUPacing.hold(threads: 1)
        #expect(Threads.count == 1)
        CPUPacing.release()
        #expect(Threads.count == 3 && !CPUPacing.isHeld)
    }

    /// The process's pacer applies its choice to libtorch's own thread pool.
    @Test func choiceReachesLibtorch() {
        let before = Threads.count
        defer { Threads.count = before }
        var reading = CPUPacing.Sample(time: 0, busy: 0, own: 0)
        let pacer = CPUPacing.Pacer(usableCores: 4, ceiling: 4, start: reading, read: { reading }, apply: { Threads.count = $0 })
        reading = CPUPacing.Sample(time: 1, busy: 4, own: 1)  // others: 3 cores
        #expect(pacer.tick(now: 1) == 1)
        #expect(Threads.count == 1)
        reading = CPUPacing.Sample(time: 2.5, busy: 6.5, own: 2.5)  // others: 1 CPU-second in 1.5 s, one core taken
        #expect(pacer.tick(now: 2.5) == 3)
        #expect(Threads.count == 3)
    }

    // MARK: A real `inkwell` process

    static let binary = Fixtures.packageRoot.appendingPathComponent(".build/debug/inkwell")

    /// `inkwell ARGS` with this environment, and none of the thread or wait settings the test process has (the
    /// test binary links the shim too); OMP_DISPLAY_ENV makes libgomp print the settings it read at load.
    static func inkwell(_ arguments: [String], environment extra: [String: String]) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment.filter { key, _ in
            !["OMP_", "GOMP_", "MKL_", "INKWELL_THREADS"].contains { key.hasPrefix($0) }
        }
        environment["OMP_DISPLAY_ENV"] = "VERBOSE"
        environment["INKWELL_DEVICE"] = "cpu"
        process.environment = environment.merging(extra) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile(), errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    /// The value libgomp reports for NAME (OMP_DISPLAY_ENV's `  NAME = 'VALUE'`).
    static func reported(_ name: String, in text: String) -> String? {
        for line in text.split(separator: "\n") {
            let parts = line.trimmingCharacters(in: .whitespaces).components(separatedBy: " = ")
            if parts.count == 2, parts[0] == name { return parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "'")) }
        }
        return nil
    }

    @Test func inkwellStartsLibgompPassiveUnlessTheUserChose() throws {
        // Nothing set: libgomp read OMP_WAIT_POLICY=PASSIVE (spin count 0; its default is 300000).
        let plain = try Self.inkwell(["info"], environment: [:])
        #expect(plain.status == 0, "\(plain.err)")
        #expect(Self.reported("GOMP_SPINCOUNT", in: plain.err) == "0")
        #expect(plain.out.contains("OpenMP wait:  passive (Inkwell's choice"))
        // The user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is what libgomp reads.
        let active = try Self.inkwell(["info"], environment: ["OMP_WAIT_POLICY": "ACTIVE"])
        #expect(Self.reported("OMP_WAIT_POLICY", in: active.err) == "ACTIVE")
        #expect(Self.reported("GOMP_SPINCOUNT", in: active.err) != "0")
        #expect(active.out.contains("OpenMP wait:  active (OMP_WAIT_POLICY)"))
        let spin = try Self.inkwell(["info"], environment: ["GOMP_SPINCOUNT": "5000"])
        #expect(Self.reported("GOMP_SPINCOUNT", in: spin.err) == "5000")
    }

    /// The test binary links the shim too, so it started as `inkwell` does: under Inkwell's wait policy unless its
    /// environment set one, and with the environment it was given, which is what the processes it starts inherit.
    @Test func startedProcessesSeeTheUsersEnvironment() {
        let environment = ProcessInfo.processInfo.environment
        #expect(environment["INKWELL_CHOSE_OMP_WAIT_POLICY"] == nil)
        if CPUPacing.choseWaitPolicy {
            #expect(environment["OMP_WAIT_POLICY"] == nil)
        } else {
            #expect(environment["OMP_WAIT_POLICY"] != nil || environment["GOMP_SPINCOUNT"] != nil)
        }
    }

    @Test func inkwellThreadSettingsWin() throws {
        // Automatic: libtorch's default on a quiet machine, fewer where others keep cores busy; always named.
        let automatic = try Self.inkwell(["info"], environment: [:])
        #expect(automatic.out.contains("(automatic: the cores other processes leave free"), "\(automatic.out)")
        let omp = try Self.inkwell(["info"], environment: ["OMP_NUM_THREADS": "1"])
        #expect(omp.out.contains("CPU threads:  1 (OMP_NUM_THREADS)"), "\(omp.out)")
        let ours = try Self.inkwell(["info"], environment: ["OMP_NUM_THREADS": "2", "INKWELL_THREADS": "3"])
        #expect(ours.out.contains("CPU threads:  3 (INKWELL_THREADS)"), "\(ours.out)")
        let flag = try Self.inkwell(["info", "--threads", "1"], environment: ["OMP_NUM_THREADS": "2", "INKWELL_THREADS": "3"])
        #expect(flag.out.contains("CPU threads:  1 (--threads)"), "\(flag.out)")
        // Bad values are refused before anything runs, naming the setting.
        let badEnv = try Self.inkwell(["info"], environment: ["INKWELL_THREADS": "many"])
        #expect(badEnv.status != 0 && badEnv.err.contains("INKWELL_THREADS must be a whole number"), "\(badEnv.err)")
        let badFlag = try Self.inkwell(["generate", "--model", "x", "--prompt", "y", "--threads", "0"], environment: [:])
        #expect(badFlag.status != 0 && badFlag.err.contains("--threads must be at least 1"), "\(badFlag.err)")
    }

    @Test func procFilesAreReadWhole() throws {
        // /proc files report size 0 and Foundation's String(contentsOfFile:) stops at 4 KiB: on a machine with
        // many cores /proc/stat's CPU lines run past that. This process's memory map is well over 4 KiB.
        let maps = try #require(CPUPacing.procText("/proc/self/maps"))
        #expect(maps.utf8.count > 8192 && maps.hasSuffix("\n"), "\(maps.utf8.count) bytes")
        #expect(maps.contains("[stack]"), "the map's last lines are there")
    }
}
