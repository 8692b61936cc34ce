// The seam between the caption stage and whatever model writes captions. The stage
// (Training/Dataset/CaptionStage.swift) is written against `ImageCaptioner`, so the BLIP model plugs in
// without the stage knowing about ViTs or beams, and tests drive it with a deterministic stub.
import Imaging

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
