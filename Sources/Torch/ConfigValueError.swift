// The error every model-config reader (diffusers components, BLIP, CLIP) throws for a value the reference
// library rejects or Inkwell does not support: the file, the key and what is wrong with it.
public struct ConfigValueError: Error, CustomStringConvertible {
    /// The config file; nil for a config built in memory.
    public var file: String?
    public let key: String
    public let message: String

    public init(file: String? = nil, key: String, _ message: String) {
        self.file = file
        self.key = key
        self.message = message
    }

    public var description: String { "\(file ?? "in-memory config"): `\(key)`: \(message)" }
}
