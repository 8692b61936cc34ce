// The Stencil layer's one error type: a bad setting or input, in words that name the flag or file.
public struct StencilError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
    static func invalid(_ why: String) -> StencilError { StencilError(why) }
}
