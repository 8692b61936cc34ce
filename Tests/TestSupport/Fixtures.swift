// Access to the parity fixtures that `make fixtures` writes with the reference libraries.
import Foundation
import Testing
import Torch

public enum Fixtures {
    /// The package root (this file is Tests/TestSupport/Fixtures.swift).
    public static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let root = packageRoot.appendingPathComponent(".fixtures")

    public struct Missing: Error, CustomStringConvertible {
        public let path: String
        public var description: String {
            "fixture \(path) is missing: run `make fixtures` (or `make test`), which generates it with the reference libraries"
        }
    }

    /// The path of a fixture file; a missing fixture is an error, never a skip.
    public static func url(_ area: String, _ file: String) throws -> URL {
        let url = root.appendingPathComponent(area).appendingPathComponent(file)
        guard FileManager.default.fileExists(atPath: url.path) else { throw Missing(path: url.path) }
        return url
    }

    /// The tensors of `<area>/<name>.safetensors`.
    public static func tensors(_ area: String, _ name: String) throws -> [String: Tensor] {
        try Safetensors.load(url(area, name + ".safetensors")).tensors
    }
}

public struct MissingKey: Error, CustomStringConvertible {
    public let key: String
    public var description: String { "fixture has no tensor '\(key)'" }
}

extension Dictionary where Key == String, Value == Tensor {
    /// The tensor under `key`, or a thrown error naming it.
    public func get(_ key: String) throws -> Tensor {
        guard let t = self[key] else { throw MissingKey(key: key) }
        return t
    }
}

/// Largest absolute difference between two tensors of the same shape (compared in float64).
public func maxAbsDiff(_ a: Tensor, _ b: Tensor) throws -> Double {
    try (a.to(.float64) - b.to(.float64)).abs().max().item()
}

/// Records a test issue unless `actual` and `expected` have the same shape and agree within `atol`.
public func expectClose(_ actual: Tensor, _ expected: Tensor, atol: Double, _ label: String = "",
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
    guard actual.shape == expected.shape else {
        Issue.record("\(label): shape \(actual.shape) != expected \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    let diff = try maxAbsDiff(actual, expected)
    if !(diff <= atol) {
        Issue.record("\(label): max abs diff \(diff) > \(atol)", sourceLocation: sourceLocation)
    }
}

/// Records a test issue unless the tensors are identical in shape, dtype and every element.
public func expectEqual(_ actual: Tensor, _ expected: Tensor, _ label: String = "",
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
    guard actual.shape == expected.shape, actual.dtype == expected.dtype else {
        Issue.record("\(label): \(actual.shape) \(actual.dtype) != expected \(expected.shape) \(expected.dtype)",
                     sourceLocation: sourceLocation)
        return
    }
    if !(try actual.equal(expected)) {
        Issue.record("\(label): elements differ (max abs diff \(try maxAbsDiff(actual, expected)))",
                     sourceLocation: sourceLocation)
    }
}

/// Runs a Python script of `reference/` with the project's venv, live; returns its stdout.
public func runReference(_ script: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = Fixtures.packageRoot.appendingPathComponent(".venv/bin/python")
    process.arguments = [Fixtures.packageRoot.appendingPathComponent("reference").appendingPathComponent(script).path] + arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw ReferenceFailed(script: script, status: process.terminationStatus,
                              stderr: String(decoding: stderr, as: UTF8.self))
    }
    return String(decoding: stdout, as: UTF8.self)
}

public struct ReferenceFailed: Error, CustomStringConvertible {
    public let script: String
    public let status: Int32
    public let stderr: String
    public var description: String { "reference/\(script) exited \(status): \(stderr)" }
}

/// A fresh temporary directory for one test.
public func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("inkwell-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
