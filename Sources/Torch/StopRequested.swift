// The one error for "the user asked to stop" (Ctrl-C, SIGTERM): thrown at the next safe point by whatever
// polls the request inside a long computation (a denoising step, an image of a batch), so the caller that
// owns the state can save what is complete and say so. Distinct from a failure: a stopped command exits 0.
public struct StopRequested: Error, CustomStringConvertible, Sendable {
    public init() {}
    public var description: String { "stopped on request" }

    /// Throws when `shouldStop` says so.
    public static func check(_ shouldStop: () -> Bool) throws {
        if shouldStop() { throw StopRequested() }
    }
}
