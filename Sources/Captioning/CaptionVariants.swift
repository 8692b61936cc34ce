// The three caption variants a run can train on, and the seam between the caption stage and whatever
// model writes captions. The stage (Training/Dataset/CaptionStage.swift) is written against
// `ImageCaptioner`, so the BLIP model plugs in without the stage knowing about ViTs or beams, and tests
// drive it with a deterministic stub.
import Imaging

/// Which text a training run pairs with each image.
public enum CaptionVariant: String, Sendable, CaseIterable, Codable {
    /// One fixed style prompt for every image. Needs no files: the trainer uses the prompt directly.
    case vanilla
    /// A captioner's description of each image, in `captions_blip/<image stem>.txt`.
    case blip
    /// The BLIP caption plus style hints not already said, fitted to the 77-token CLIP window,
    /// in `captions_blip_plus/<image stem>.txt`.
    case blipPlus = "blip_plus"

    /// The default fixed prompt of the vanilla variant.
    public static let defaultPrompt = "minimal line-art tattoo, stencil, high-contrast"
    /// The default style hints appended by blip_plus (comma-separated phrases).
    public static let defaultHints = "clean line tattoo, high contrast, stencil, no shading"

    /// The caption folder under the dataset folder; nil for vanilla, which writes no files.
    public var folderName: String? {
        switch self {
        case .vanilla: return nil
        case .blip: return "captions_blip"
        case .blipPlus: return "captions_blip_plus"
        }
    }

    /// Parses the names used on the command line and in configs ("blip+" and "blip-plus" too).
    public init?(name: String) {
        switch name.lowercased() {
        case "vanilla": self = .vanilla
        case "blip": self = .blip
        case "blip_plus", "blip+", "blip-plus", "blipplus": self = .blipPlus
        default: return nil
        }
    }
}

/// Anything that turns images into one caption each: the BLIP model, or a stub in tests.
public protocol ImageCaptioner {
    /// Says which model and which generation settings wrote a caption (e.g. "blip-large sha256:… beams=3
    /// max=30"). The caption stage records it and redoes captions when it changes.
    var identity: String { get }
    /// The most images worth passing in one call (the stage batches by it).
    var preferredBatchSize: Int { get }
    /// One caption per image, in order. RGB images of any size; the captioner does its own preprocessing.
    func caption(_ images: [Image]) throws -> [String]
}

extension ImageCaptioner {
    public var preferredBatchSize: Int { 8 }
}
