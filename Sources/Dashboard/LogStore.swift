// Reading runs/<run>/log.csv while the trainer appends to it, with RunFiles' parser: each poll reads only
// the bytes appended since the last one, a trailing line without its newline waits for the next poll
// (the trainer may be half-way through writing it), and a resumed run's atomic rewrite (a new file) is
// noticed by the file's identity and read again from the start.
import Foundation
import RunFiles

/// Parsed logs kept between requests.
actor LogStore {
    private struct Entry {
        var identity: UInt64
        var offset: UInt64
        var parser = TrainingLogParser()
        var rows: [TrainingLogRow] = []
    }

    private var entries: [String: Entry] = [:]

    /// All rows of the log at `url`, non-finite numbers absent (empty when the file does not exist).
    func rows(_ url: URL) -> [TrainingLogRow] {
        let path = url.path
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = (attributes[.size] as? NSNumber)?.uint64Value else {
            entries[path] = nil
            return []
        }
        let identity = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
        var entry = entries[path] ?? Entry(identity: identity, offset: 0)
        if entry.identity != identity || size < entry.offset {
            entry = Entry(identity: identity, offset: 0)
        }
        if size > entry.offset, let handle = FileHandle(forReadingAtPath: path) {
            defer { try? handle.close() }
            do {
                try handle.seek(toOffset: entry.offset)
                let (rows, bytes) = entry.parser.consume(try handle.readToEnd() ?? Data())
                entry.rows += rows.map(\.finite)
                entry.offset += UInt64(bytes)
            } catch {
                // An unreadable tail is retried on the next poll; the rows read so far stay valid.
            }
        }
        entries[path] = entry
        return entry.rows
    }
}

extension Array where Element == TrainingLogRow {
    /// The best validation row after step 0 (step 0 is the base model, not a checkpoint).
    var bestValidation: TrainingLogRow? {
        filter { $0.step > 0 && $0.validationLoss != nil }.min { ($0.validationLoss ?? 0) < ($1.validationLoss ?? 0) }
    }

    var lastValidation: TrainingLogRow? { last { $0.validationLoss != nil } }
}
