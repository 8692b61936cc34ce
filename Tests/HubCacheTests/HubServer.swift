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
        process = Process()
        process.executableURL = Fixtures.packageRoot.appendingPathComponent(".venv/bin/python")
        process.arguments = [Fixtures.packageRoot.appendingPathComponent("reference/hub_server.py").path,
                             "--repo", "\(Self.repo)=\(folder)", "--log", log.path] + arguments
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
        url = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard url.hasPrefix("http://") else {
            kill(process.processIdentifier, SIGKILL)
            throw ServerFailed(message: "reference/hub_server.py printed no address")
        }
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
