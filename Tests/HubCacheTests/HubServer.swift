// reference/hub_server.py run for one test: a local Hub serving the repo that diffusers wrote
// (.fixtures/hub_repo/tiny-sd), with the faults a test asks for, and the log of every request it received.
import Foundation
import TestSupport

final class HubServer {
    let url: String
    let log: URL
    private let process: Process

    static let repo = "inkwell-test/tiny-sd"

    /// `arguments` add to the default repo (gated repos, tokens, faults: see the script's usage).
    init(_ arguments: [String] = []) throws {
        let folder = try Fixtures.url("hub_repo", "tiny-sd").path
        log = try temporaryDirectory().appendingPathComponent("requests.jsonl")
        (process, url) = try launchReference("hub_server.py", ["--repo", "\(Self.repo)=\(folder)", "--log", log.path] + arguments)
    }

    deinit {
        // SIGKILL: a test runner may leave SIGTERM blocked in the processes it starts.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    struct Request: Decodable {
        let method: String
        let path: String
        let range: String?
        let authorization: String?
    }

    /// What the server received so far.
    func requests() throws -> [Request] {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }
}

/// Starts a reference server script and reads its address, the first line it prints.
func launchReference(_ script: String, _ arguments: [String]) throws -> (Process, String) {
    let process = Process()
    process.executableURL = Fixtures.packageRoot.appendingPathComponent(".venv/bin/python")
    process.arguments = [Fixtures.packageRoot.appendingPathComponent("reference/\(script)").path] + arguments
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    // The first line is the address; a server that dies first leaves an empty read.
    var line = Data()
    while !line.contains(UInt8(ascii: "\n")) {
        let chunk = out.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        line += chunk
    }
    let url = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard url.hasPrefix("http://") else {
        kill(process.processIdentifier, SIGKILL)
        throw ServerFailed(message: "reference/\(script) printed no address")
    }
    return (process, url)
}

/// reference/http_proxy.py run for one test: a CONNECT and forwarding proxy that resolves the --map names, with
/// the log of what it was asked for.
final class HTTPProxy {
    let url: String
    let log: URL
    private let process: Process

    init(map: [String: String] = [:]) throws {
        log = try temporaryDirectory().appendingPathComponent("proxy.jsonl")
        (process, url) = try launchReference("http_proxy.py", ["--log", log.path] + map.flatMap { ["--map", "\($0.key)=\($0.value)"] })
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// The CONNECT targets (host:port) and forwarded addresses it was asked for.
    func targets() throws -> [String] {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map {
            try JSONDecoder().decode([String: String].self, from: Data($0.utf8))["target"] ?? ""
        }
    }
}

/// reference/hub_check.py's answer: a snapshot folder and its files, as huggingface_hub / diffusers see them.
struct HubCheck: Decodable {
    let snapshot: String
    let files: [String]
    let unet_equal: Bool?
    let components: [String]?

    static func run(_ arguments: [String]) throws -> HubCheck {
        let output = try runReference("hub_check.py", arguments)
        guard let last = output.split(separator: "\n").last else {
            throw ServerFailed(message: "reference/hub_check.py printed nothing")
        }
        return try JSONDecoder().decode(HubCheck.self, from: Data(last.utf8))
    }
}

struct ServerFailed: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
