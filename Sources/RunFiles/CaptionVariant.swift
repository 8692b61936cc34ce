// The caption variants a run can train on, and where a prepared dataset keeps each one's captions:
// data.captions in a run's config, pipeline.variants, `inkwell caption --variant`.

/// Which text a training run pairs with each image.
public enum CaptionVariant: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    /// One fixed style prompt for every image. Needs no files: the trainer uses the prompt directly.
    case vanilla
    /// A captioner's description of each image, in `captions_blip/<image stem>.txt`.
    case blip
    /// The BLIP caption plus style hints not already said, fitted to the 77-token CLIP window,
    /// in `captions_blip_plus/<image stem>.txt`.
    case blipPlus = "blip_plus"

    /// The name configs and the command line use.
    public var description: String { rawValue }

    /// The default fixed prompt of the vanilla variant.
    public static let defaultPrompt = "minimal line-art tattoo, stencil, high-contrast"

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

