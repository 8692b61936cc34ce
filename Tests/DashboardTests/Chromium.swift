// Driving Debian's headless chromium from a test: one process per page load, with a wall-clock
// limit, its own throw-away profile, and every background feature that would reach the network off.
// `--virtual-time-budget` lets the page's timers (the 2-second poll) run as fast as the work allows.
// A missing chromium is a test failure with the command that installs it, never a skip.
import Foundation
import Testing

struct Chromium {
    struct Missing: Error, CustomStringConvertible {
        var description: String {
            "chromium is not installed, and the dashboard's browser test needs it: run `apt-get update && apt-get install -y chromium` "
                + "(as root; `scripts/bootstrap.sh --test` installs it for `make test`)"
        }
    }

    struct Failed: Error, CustomStringConvertible {
        let description: String
    }

    let executable: URL
    let profile: URL

    /// Finds chromium on PATH (or CHROMIUM=/path), or throws `Missing`.
    init() throws {
        let environment = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let explicit = environment["CHROMIUM"] { candidates.append(explicit) }
        for dir in (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            candidates += ["\(dir)/chromium", "\(dir)/chromium-browser"]
        }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { throw Missing() }
        executable = URL(fileURLWithPath: found)
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("inkwell-chromium-\(UUID().uuidString)")
    }

    func cleanUp() { try? FileManager.default.removeItem(at: profile) }

    var commonArguments: [String] {
        ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--user-data-dir=\(profile.path)", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
         "--disable-background-networking", "--disable-sync", "--disable-component-update", "--disable-default-apps",
         "--metrics-recording-only", "--mute-audio", "--force-device-scale-factor=1"]
    }

    /// The page's DOM after `budget` ms of virtual time.
    func dumpDOM(_ url: String, width: Int = 1280, height: Int = 1600, budget: Int = 10_000) async throws -> String {
        let output = try await run(commonArguments + ["--window-size=\(width),\(height)", "--virtual-time-budget=\(budget)", "--dump-dom", url])
        guard output.contains("<html") else { throw Failed(description: "chromium printed no DOM for \(url):\n\(output.prefix(2000))") }
        return output
    }

    /// A PNG screenshot of the page after `budget` ms of virtual time.
    func screenshot(_ url: String, to file: URL, width: Int = 1280, height: Int = 1800, budget: Int = 8_000) async throws {
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? FileManager.default.removeItem(at: file)
        _ = try await run(commonArguments + ["--window-size=\(width),\(height)", "--virtual-time-budget=\(budget)",
                                             "--screenshot=\(file.path)", url])
        guard FileManager.default.fileExists(atPath: file.path) else { throw Failed(description: "chromium wrote no screenshot of \(url)") }
    }

    /// Runs chromium, killing it after `limit` seconds; returns its standard output.
    private func run(_ arguments: [String], limit: TimeInterval = 90) async throws -> String {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        // Output goes to files: a pipe that nobody drains would stall a large DOM dump.
        let out = profile.appendingPathComponent("stdout-\(UUID().uuidString).txt")
        let err = profile.appendingPathComponent("stderr-\(UUID().uuidString).txt")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: out)
        let errHandle = try FileHandle(forWritingTo: err)
        defer { try? outHandle.close(); try? errHandle.close() }
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice

        let finished = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in finished.continuation.yield(); finished.continuation.finish() }
        try process.run()
        let pid = process.processIdentifier
        let watchdog = Task {
            try await Task.sleep(for: .seconds(limit))
            kill(pid, SIGKILL)
        }
        for await _ in finished.stream { break }
        watchdog.cancel()
        let stdout = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let stderr = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
            throw Failed(description: "chromium \(arguments.last ?? "") ended with status \(process.terminationStatus) "
                         + "(\(process.terminationReason == .uncaughtSignal ? "killed after \(Int(limit)) s or crashed" : "exit")):\n"
                         + String(stderr.suffix(3000)))
        }
        return stdout
    }
}
