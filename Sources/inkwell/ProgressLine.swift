// A progress line with rate and ETA: redrawn in place on a terminal, a plain line every few seconds in a
// pipe or a file. Other output goes through `say`, which first clears a progress line still on the screen,
// so no message lands on it. Both flush at once: the C library holds a non-terminal stdout in a block
// buffer, so without it a log file would fill in 4 KB jumps and a killed process would lose the tail.
import Foundation

/// Whether stdout is a terminal (progress redraws in place) or a pipe or file (plain lines).
let stdoutIsTerminal = isatty(STDOUT_FILENO) != 0
let stderrIsTerminal = isatty(STDERR_FILENO) != 0

/// Whether a progress line is drawn without its newline: the next output must clear it first.
nonisolated(unsafe) private var progressLineOpen = false

/// Prints a line of output; on a terminal, over any progress line still being drawn (it is redrawn on its
/// next update).
func say(_ text: String) {
    if progressLineOpen {
        FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8))
        progressLineOpen = false
    }
    print(text)
    fflush(nil)
}

final class ProgressLine {
    private let total: Int
    private let label: String
    private let unit: String
    /// stderr for output that must stay off stdout (an implicit download before a command's own output).
    private let toStandardError: Bool
    /// The first update's count and time: the rate is taken from there, so that setup before the first item
    /// (loading, caching latents) and the items a resumed run had already done do not distort it.
    private var first: (done: Int, at: Date)?
    private var lastPrinted = Date.distantPast
    private var finished = false

    init(total: Int, label: String, unit: String = "it", toStandardError: Bool = false) {
        self.total = total
        self.label = label
        self.unit = unit
        self.toStandardError = toStandardError
    }

    /// Reports that `done` of `total` items are finished; `detail` is appended (loss, lr, ...). The count never
    /// shows past the total.
    func update(_ done: Int, detail: String = "") {
        let done = min(done, total)
        guard !finished else { return }
        let now = Date()
        let origin = first ?? (done, now)
        first = origin
        let elapsed = now.timeIntervalSince(origin.at)
        let rate = done > origin.done && elapsed > 0 ? Double(done - origin.done) / elapsed : nil
        let speed = rate.map { String(format: "%.2f", $0) } ?? "-"
        let eta = rate.map { Self.clock(Double(total - done) / $0) } ?? "-"
        let line = String(format: "%@ %d/%d  %@ %@/s  ETA %@  %@", label, done, total, speed, unit, eta, detail)
        finished = done == total
        if toStandardError {
            // Redrawn in place on a terminal; else a line every 5 s (say() only knows about stdout's line).
            if stderrIsTerminal {
                FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (finished ? "\n" : "")).utf8))
            } else if finished || now.timeIntervalSince(lastPrinted) >= 5 {
                FileHandle.standardError.write(Data((line + "\n").utf8))
                lastPrinted = now
            }
        } else if stdoutIsTerminal {
            FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line + (finished ? "\n" : "")).utf8))
            progressLineOpen = !finished
        } else if finished || now.timeIntervalSince(lastPrinted) >= 5 {
            print(line)
            fflush(nil)
            lastPrinted = now
        }
    }

    /// Ends the line where it stands (a run stopped before its total).
    func finish() {
        guard !finished else { return }
        finished = true
        if toStandardError {
            if stderrIsTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
        } else if progressLineOpen {
            print("")
            progressLineOpen = false
        }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                         : String(format: "%d:%02d", s / 60, s % 60)
    }
}
