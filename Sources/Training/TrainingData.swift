// What the trainer trains on: a prepared dataset's images with the caption of the chosen variant,
// split into training and validation images.
import Foundation

public struct TrainingExample: Equatable, Sendable {
    public let name: String
    public let image: URL
    public let caption: String
    public let isValidation: Bool

    public init(name: String, image: URL, caption: String, isValidation: Bool) {
        self.name = name
        self.image = image
        self.caption = caption
        self.isValidation = isValidation
    }
}

public struct TrainingDataError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}
