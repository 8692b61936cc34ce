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

public enum CaptionVariantName: String, Sendable, CaseIterable {
    case vanilla, blip
    case blipPlus = "blip_plus"

    /// The caption folder of a prepared dataset for this variant (nil: no files, a fixed prompt).
    public var folder: String? {
        switch self {
        case .vanilla: return nil
        case .blip: return "captions_blip"
        case .blipPlus: return "captions_blip_plus"
        }
    }
}
