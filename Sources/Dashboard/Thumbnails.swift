// Downscaled PNGs for the sample grids: a prompts × steps grid of 512-pixel samples would otherwise
// move megabytes per poll. A thumbnail is keyed by the file's path, size and modification time (a
// rewritten sample gets a new one) and one of a few fixed widths (so a client cannot fill the cache
// with every width). The decode and resize run off the actor, and concurrent requests for the same
// thumbnail share one render. The cache holds at most `budget` bytes, oldest first out.
import Foundation
import Imaging

actor Thumbnails {
    struct Key: Hashable, Sendable {
        var path: String
        var width: Int
        var bytes: Int
        var modified: Double
    }

    /// Widths the dashboard renders; a request is rounded up to one of them.
    static let widths = [96, 160, 256, 384, 512, 768]
    /// Larger images are refused rather than decoded (a sample is 512² to 1024²).
    static let maxPixels = 50_000_000

    private var cache: [Key: [UInt8]] = [:]
    private var order: [Key] = []
    private var cachedBytes = 0
    private var running: [Key: Task<[UInt8], any Error>] = [:]
    let budget: Int
    private(set) var renders = 0

    init(budget: Int = 64 << 20) { self.budget = budget }

    static func width(for requested: Int) -> Int {
        widths.first { $0 >= requested } ?? widths[widths.count - 1]
    }

    /// The thumbnail of the image at `url` (a real path inside runs/), `requested` pixels wide or the
    /// next allowed width; an image already that small comes back re-encoded at its own size.
    func png(for url: URL, requested: Int) async throws -> [UInt8] {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        let key = Key(path: url.path, width: Self.width(for: requested),
                      bytes: (attributes[.size] as? NSNumber)?.intValue ?? 0,
                      modified: (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
        if let hit = cache[key] { return hit }
        if let task = running[key] { return try await task.value }
        let task = Task.detached(priority: .utility) { try Self.render(url, width: key.width) }
        running[key] = task
        renders += 1
        defer { running[key] = nil }
        let png = try await task.value
        store(png, for: key)
        return png
    }

    private func store(_ png: [UInt8], for key: Key) {
        guard png.count <= budget, cache[key] == nil else { return }
        cache[key] = png
        order.append(key)
        cachedBytes += png.count
        while cachedBytes > budget, !order.isEmpty {
            let old = order.removeFirst()
            cachedBytes -= cache.removeValue(forKey: old)?.count ?? 0
        }
    }

    private static func render(_ url: URL, width: Int) throws -> [UInt8] {
        let image = try Image.load(url, maxPixels: maxPixels)
        guard image.width > width else { return try image.pngData() }
        let height = max(1, Int((Double(image.height) * Double(width) / Double(image.width)).rounded()))
        return try image.resized(width: width, height: height, filter: .bilinear).pngData()
    }
}
