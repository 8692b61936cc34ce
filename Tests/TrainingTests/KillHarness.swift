// Runs the real `inkwell` binary (the debug build `swift build` makes) and SIGKILLs it at seeded random moments:
// after a random delay, or halfway through its Nth file write (INKWELL_FAULT_KILL_IN_WRITE, see
// Sources/AtomicFile/WriteFaults.swift). After each kill it checks the work folder: every file loads, and every
// file that is not rewritten as the command goes (state, logs, manifests) equals the uninterrupted run's.
// INKWELL_KILL_SOAK=N multiplies the number of kills (a long soak run); INKWELL_KILL_SEED picks other moments.
import AtomicFile
import Foundation
import Imaging
import RunFiles
import Testing
import TestSupport
import Torch

struct KillHarness {
    static let binary = Fixtures.packageRoot.appendingPathComponent(".build/debug/inkwell")
    static let soak = ProcessInfo.processInfo.environment["INKWELL_KILL_SOAK"].flatMap { Int($0) }.map { max(1, $0) } ?? 1
    static let seed = ProcessInfo.processInfo.environment["INKWELL_KILL_SEED"].flatMap { UInt64($0) } ?? 17

    enum Outcome {
        case exited(Int32, String)
        case killed(String)
    }

    /// The folder the command works in, and the same folder as an uninterrupted run left it.
    let work: URL
    let reference: URL
    /// Files rewritten as the command goes (by name or by a folder in their path): they must load after a kill,
    /// but only match the uninterrupted run's at the end, if at all (`unchecked`).
    let mutable: Set<String>
    /// Files that hold times or counts of sessions (status.json, trainer.json): they must load, nothing more.
    let unchecked: Set<String>
    var random: SplitMix64

    /// Sets up `work` with `setup`, runs `arguments` once uninterrupted into a copy kept as the reference, then
    /// restores `work` to its state before that run.
    init(_ arguments: [String], mutable: Set<String>, unchecked: Set<String> = [], seed: UInt64 = KillHarness.seed,
         setup: (URL) throws -> Void) throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build first: swift build --build-tests")
        let root = try temporaryDirectory()
        work = root.appendingPathComponent("work")
        reference = root.appendingPathComponent("reference")
        let before = root.appendingPathComponent("before")
        self.mutable = mutable
        self.unchecked = unchecked
        random = SplitMix64(seed: seed)
        let fm = FileManager.default
        try fm.createDirectory(at: work, withIntermediateDirectories: true)
        try setup(work)
        try fm.copyItem(at: work, to: before)
        let started = Date()
        let outcome = try run(arguments)
        guard case .exited(0, _) = outcome else { throw HarnessError("the uninterrupted run failed: \(outcome)") }
        referenceSeconds = Date().timeIntervalSince(started)
        try fm.moveItem(at: work, to: reference)
        try fm.moveItem(at: before, to: work)
        referenceFiles = Self.files(in: reference)
    }

    private(set) var referenceSeconds = 0.0
    private(set) var referenceFiles: [String] = []

    /// Runs the binary to its end, or SIGKILLs it after `killAfter` seconds (if it is still running then).
    func run(_ arguments: [String], environment extra: [String: String] = [:], killAfter: Double? = nil) throws -> Outcome {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        process.currentDirectoryURL = work
        // One fixed thread count: libtorch's reductions depend on it. A training run records its count and --resume
        // reuses it, but the uninterrupted reference run and the first killed run each choose theirs at their start,
        // under that moment's load (as does a run killed before its first state save, and prepare, caption and the
        // latent cache record nothing), so they could otherwise differ in the last bit.
        process.environment = ProcessInfo.processInfo.environment.merging(["INKWELL_THREADS": "1"].merging(extra) { $1 }) { $1 }
        let log = work.deletingLastPathComponent().appendingPathComponent("output-\(UUID().uuidString).txt")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close(); try? FileManager.default.removeItem(at: log) }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        if let killAfter {
            let deadline = Date().addingTimeInterval(killAfter)
            while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        if process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL { return .killed(output) }
        return .exited(process.terminationStatus, output)
    }

    /// Kills `arguments` `count` times (each run continuing what the killed one left), alternating a random delay
    /// within the uninterrupted run's time and a random write; checks the folder after each kill, then runs to
    /// the end and checks that everything equals the uninterrupted run's. Returns how many kills landed inside
    /// a write (a temporary file left behind).
    @discardableResult
    mutating func killRepeatedly(_ arguments: [String], count: Int) throws -> (kills: Int, insideWrites: Int) {
        var kills = 0, insideWrites = 0
        let writes = max(2, referenceFiles.count)
        for i in 0..<(count * Self.soak) {
            let before = Self.files(in: work)
            let outcome: Outcome
            let moment: String
            if i % 2 == 0 {
                let delay = random.unit() * referenceSeconds
                moment = String(format: "after %.2f s", delay)
                outcome = try run(arguments, killAfter: delay)
            } else {
                let n = 1 + Int(random.next() % UInt64(writes))
                moment = "in write \(n)"
                outcome = try run(arguments, environment: ["INKWELL_FAULT_KILL_IN_WRITE": String(n)])
            }
            switch outcome {
            case .killed:
                kills += 1
                let temporaries = Set(Self.files(in: work, temporaries: true).filter { Self.isTemporary($0) }).subtracting(before)
                if !temporaries.isEmpty { insideWrites += 1 }
                print("\(arguments[0]): killed \(moment); left \(temporaries.sorted())")
                try checkIntact(after: "the kill \(moment) (kill \(i + 1))")
            case .exited(let status, let output):
                // Finished before the kill came: then it must have succeeded.
                #expect(status == 0, "kill \(i + 1) \(moment): the run exited \(status) instead: \(output)")
            }
        }
        let last = try run(arguments)
        guard case .exited(0, _) = last else { throw HarnessError("the run after the kills did not finish: \(last)") }
        try checkFinal()
        return (kills, insideWrites)
    }

    /// Every file loads; every one that is not rewritten as the command goes equals the uninterrupted run's.
    func checkIntact(after moment: String) throws {
        for file in Self.files(in: work) {
            let url = work.appendingPathComponent(file)
            do { try Self.load(url) } catch {
                Issue.record("after \(moment): \(file) does not load: \(error)")
                continue
            }
            if isMutable(file) { continue }
            let expected = reference.appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: expected.path) else { continue }
            if let difference = try Self.difference(url, expected) {
                Issue.record("after \(moment): \(file) differs from the uninterrupted run's: \(difference)")
            }
        }
    }

    /// The finished folder holds the uninterrupted run's files, equal (mutable ones included, except `unchecked`),
    /// and no temporary file.
    func checkFinal() throws {
        let files = Self.files(in: work)
        let extra = files.filter { !referenceFiles.contains($0) }, missing = referenceFiles.filter { !files.contains($0) }
        #expect(files == referenceFiles, "files after the kills and a last run: \(extra) extra, \(missing) missing")
        for file in referenceFiles where files.contains(file) && !unchecked.contains((file as NSString).lastPathComponent) {
            if let difference = try Self.difference(work.appendingPathComponent(file), reference.appendingPathComponent(file)) {
                Issue.record("\(file) differs from the uninterrupted run's: \(difference)")
            }
        }
        let temporaries = Self.files(in: work, temporaries: true).filter { Self.isTemporary($0) }
        #expect(temporaries.isEmpty, "temporary files left after a finished run: \(temporaries)")
    }

    /// Files a run rewrites as it goes: the named ones, and a run's best LoRA (`NAME-best.safetensors`), which is
    /// replaced at every validation that improves, so a killed run holds the best so far, not the final best.
    func isMutable(_ file: String) -> Bool {
        let parts = file.split(separator: "/").map(String.init)
        return parts.contains { mutable.contains($0) } || unchecked.contains(parts.last ?? "")
            || (parts.last ?? "").hasSuffix("-best.safetensors")
    }

    static func isTemporary(_ file: String) -> Bool {
        file.split(separator: "/").contains { AtomicWrite.isTemporary(String($0)) || $0 == ".state.old" }
    }

    /// Relative paths of the regular files under `folder`, sorted; temporaries only when asked.
    static func files(in folder: URL, temporaries: Bool = false) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: folder.path) else { return [] }
        var found: [String] = []
        while let file = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path, isDirectory: &isDirectory),
                  !isDirectory.boolValue else { continue }
            if temporaries || !isTemporary(file) { found.append(file) }
        }
        return found.sorted()
    }

    /// Reads a file the way its readers do, by kind: throws when it is cut short or corrupt.
    static func load(_ url: URL) throws {
        let data = try Data(contentsOf: url)
        switch url.pathExtension {
        case "safetensors": _ = try Safetensors.load(url)
        case "png": _ = try ImageDecoder.read(url)
        case "json": _ = try JSONSerialization.jsonObject(with: data)
        case "csv":
            // A row cut short by the kill may end the file; its readers must leave it out, and read every whole row.
            let whole = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).count - 1
            let rows = try TrainingLog.read(url).count
            guard rows == whole - 1 else { throw HarnessError("\(rows) rows read of \(whole - 1) whole ones") }
        default:
            guard String(data: data, encoding: .utf8) != nil else { throw HarnessError("not UTF-8 text") }
        }
    }

    /// nil when two files hold the same: safetensors the same tensors bit for bit (a LoRA's metadata holds the
    /// time its training started), anything else the same bytes.
    static func difference(_ a: URL, _ b: URL) throws -> String? {
        if a.pathExtension == "safetensors" {
            let (x, _) = try Safetensors.load(a), (y, _) = try Safetensors.load(b)
            guard x.keys.sorted() == y.keys.sorted() else { return "tensor names differ" }
            for (name, tensor) in x {
                guard let other = y[name], tensor.shape == other.shape, tensor.dtype == other.dtype,
                      try tensor.equal(other) else { return "tensor \(name) differs" }
            }
            return nil
        }
        let x = try Data(contentsOf: a), y = try Data(contentsOf: b)
        return x == y ? nil : "\(x.count) bytes, expected \(y.count) bytes of other content"
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
