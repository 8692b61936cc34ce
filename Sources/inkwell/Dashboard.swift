// `inkwell dashboard`: the local web page over runs/ (live curves, samples, comparisons).
import ArgumentParser
import Dashboard
import Foundation

struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve a local web page over runs/: live curves, samples by step, run comparisons, pipeline summaries.")

    @Option(help: "The runs folder to show.") var runs = "runs"
    @Option(help: "Address to listen on (127.0.0.1 keeps the page on this machine; another address needs --allow-remote).")
    var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 8765
    @Flag(name: .customLong("allow-remote"), help: "Serve on a --host that other machines can reach (a token is then required).")
    var allowRemote = false
    @Option(help: "The token every request must carry (default off loopback: a fresh one, printed in the address).")
    var token: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535, got \(port)") }
    }

    func run() throws {
        let server: DashboardServer
        do {
            let access = try DashboardAccess.forHost(host, allowRemote: allowRemote, token: token)
            server = try DashboardServer(runs: URL(fileURLWithPath: runs), host: host, port: port, access: access)
        } catch let error as DashboardError {
            throw CommandError(error.description)
        }
        if !DashboardAccess.isLoopback(host) {
            say("warning: serving \(runs) on \(host), reachable from other machines; over plain HTTP, so anyone on the "
                + "network path can read the token: use it on networks you trust")
        }
        // The command line is synchronous; the server is async. Run it on the concurrency pool and
        // wait here until it stops (Ctrl-C / SIGTERM shut it down gracefully).
        let outcome = Outcome()
        let host = self.host
        let runs = server.data.root.path
        Task {
            do {
                try await server.run { port in
                    // Unbuffered, so a script reading the output sees the address at once.
                    let line = "dashboard over \(runs) at \(server.url(port: port)) (Ctrl-C to stop)\n"
                    FileHandle.standardOutput.write(Data(line.utf8))
                }
            } catch {
                outcome.fail(error)
            }
            outcome.finish()
        }
        outcome.wait()
        if let error = outcome.error {
            throw CommandError("the dashboard on \(DashboardServer.url(host: host, port: port)) stopped: \(error)")
        }
    }
}

/// The end of the server task, handed from the concurrency pool to the waiting main thread.
private final class Outcome: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var failure: (any Error)?

    func fail(_ error: any Error) { lock.withLock { failure = error } }
    func finish() { done.signal() }
    func wait() { done.wait() }
    var error: (any Error)? { lock.withLock { failure } }
}
