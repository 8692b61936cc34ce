// Errors of the dataset stages: every message names the file or the setting it is about.
import Foundation

public struct DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static func io(_ path: String, _ what: String, _ error: Error) -> DatasetError {
        DatasetError("\(path): cannot \(what): \(error.localizedDescription)")
    }
}
