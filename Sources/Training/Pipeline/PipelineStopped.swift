// A stop request (Ctrl-C, SIGTERM) ended `inkwell pipeline` in one of its stages. Every stage keeps what it
// finished (prepared images, captions, a trainer state, compare cells) and skips it on the next run, so
// running the same command again continues where this one stopped.
public struct PipelineStopped: Error, CustomStringConvertible, Sendable {
    /// The stage the request came in: "prepare", "caption", "train blip", "compare".
    public let stage: String
    /// What was kept, in a few words.
    public let saved: String

    public init(stage: String, saved: String) {
        self.stage = stage
        self.saved = saved
    }

    public var description: String { "stopped during \(stage): \(saved); run the same command again to continue" }
}
