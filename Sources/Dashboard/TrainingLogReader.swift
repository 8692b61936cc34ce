// Reading runs/<run>/log.csv while the trainer appends to it. The header names the columns, so a
// log with columns added later (or reordered) still reads; a row whose step does not parse is
// skipped, and a trailing line without its newline is left for the next read (the trainer may be
// half-way through writing it). A resumed run rewrites the log atomically (a new file), which the
// cache notices by the file's identity and re-reads from the start.
import Foundation

/// One logged step; absent, unparsable and non-finite cells are nil (JSON has no NaN).
public struct LogRow: Codable, Equatable, Sendable {
    public var step: Int
    public var epoch: Int?
    public var trainLoss: Double?
    public var smoothedLoss: Double?
    public var valLoss: Double?
    public var clipScore: Double?
    public var lr: Double?
    public var gradNorm: Double?
    public var nonFinite: Int?

    enum CodingKeys: String, CodingKey {
        case step, epoch, lr
        case trainLoss = "train_loss", smoothedLoss = "smoothed_loss", valLoss = "val_loss"
        case clipScore = "clip_score", gradNorm = "grad_norm", nonFinite = "non_finite"
    }
}

/// Maps header names to cell positions and turns lines into rows.
struct LogColumns: Sendable {
    private var index: [String: Int] = [:]

    init?(header: Substring) {
        for (i, name) in header.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            index[name.trimmingCharacters(in: .whitespacesAndNewlines)] = i
        }
        guard index["step"] != nil else { return nil }
    }

    func row(_ line: Substring) -> LogRow? {
        let cells = line.split(separator: ",", omittingEmptySubsequences: false)
        func cell(_ name: String) -> Substring? {
            guard let i = index[name], i < cells.count else { return nil }
            let c = cells[i].trimmingCharacters(in: .whitespaces)
            return c.isEmpty ? nil : Substring(c)
        }
        func number(_ name: String) -> Double? {
            guard let c = cell(name), let x = Double(c), x.isFinite else { return nil }
            return x
        }
        guard let stepCell = cell("step"), let step = Int(stepCell) else { return nil }
        return LogRow(step: step, epoch: cell("epoch").flatMap { Int($0) }, trainLoss: number("train_loss"),
                      smoothedLoss: number("smoothed_loss"), valLoss: number("val_loss"),
                      clipScore: number("clip_score"), lr: number("lr"), gradNorm: number("grad_norm"),
                      nonFinite: cell("non_finite").flatMap { Int($0) })
    }
}

/// Parsed logs kept between requests; each poll reads only the bytes appended since the last one.
actor LogStore {
    private struct Entry {
        var identity: UInt64
        var offset: UInt64
        var columns: LogColumns?
        var rows: [LogRow]
    }

    private var entries: [String: Entry] = [:]

    /// All rows of the log at `url` (empty when the file does not exist).
    func rows(_ url: URL) -> [LogRow] {
        let path = url.path
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = (attributes[.size] as? NSNumber)?.uint64Value else {
            entries[path] = nil
            return []
        }
        let identity = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
        var entry = entries[path] ?? Entry(identity: identity, offset: 0, columns: nil, rows: [])
        if entry.identity != identity || size < entry.offset {
            entry = Entry(identity: identity, offset: 0, columns: nil, rows: [])
        }
        if size > entry.offset, let handle = FileHandle(forReadingAtPath: path) {
            defer { try? handle.close() }
            do {
                try handle.seek(toOffset: entry.offset)
                let data = try handle.readToEnd() ?? Data()
                entry.offset += Self.consume(data, into: &entry)
            } catch {
                // An unreadable tail is retried on the next poll; the rows read so far stay valid.
            }
        }
        entries[path] = entry
        return entry.rows
    }

    /// Parses the complete lines of `data`; returns how many bytes they took.
    private static func consume(_ data: Data, into entry: inout Entry) -> UInt64 {
        guard let lastNewline = data.lastIndex(of: UInt8(ascii: "\n")) else { return 0 }
        let complete = data[data.startIndex...lastNewline]
        let text = String(decoding: complete, as: UTF8.self)
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            if entry.columns == nil {
                entry.columns = LogColumns(header: line)
                continue
            }
            if let columns = entry.columns, let row = columns.row(line) { entry.rows.append(row) }
        }
        return UInt64(complete.count)
    }
}

extension Array where Element == LogRow {
    /// The best validation row after step 0 (step 0 is the base model, not a checkpoint).
    var bestValidation: LogRow? {
        filter { $0.step > 0 && $0.valLoss != nil }.min { ($0.valLoss ?? 0) < ($1.valLoss ?? 0) }
    }

    var lastValidation: LogRow? { last { $0.valLoss != nil } }
}
