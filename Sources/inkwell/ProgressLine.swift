// A progress line with rate and ETA on a terminal; plain periodic log lines otherwise.
import Foundation

final class ProgressLine {
    private let total: Int
    private let label: String
    private let unit: String
    /// The first update's count and time: the rate is taken from there, so that setup before the first item
    /// (loading, caching latents) and the items a resumed run had already done do not distort it.
    private var first: (done: Int, at: Date)?
    private let interactive = isatty(STDOUT_FILENO) != 0
    private var lastPrinted = Date.distantPast

    init(total: Int, label: String, unit: String = "it") {
        self.total = total
        self.label = label
        self.unit = unit
    }

    /// Reports that `done` of `total` items are finished; `detail` is appended (loss, lr, ...).
    func update(_ done: Int, detail: String = "") {
        let now = Date()
        let origin = first ?? (done, now)
        first = origin
        let elapsed = now.timeIntervalSince(origin.at)
        let rate = done > origin.done && elapsed > 0 ? Double(done - origin.done) / elapsed : nil
        let speed = rate.map { String(format: "%.2f", $0) } ?? "-"
        let eta = rate.map { Self.clock(Double(total - done) / $0) } ?? "-"
        let line = String(format: "%@ %d/%d  %@ %@/s  ETA %@  %@", label, done, total, speed, unit, eta, detail)
        if interactive {
            let text = "\r\u{1B}[K" + line + (done == total ? "\n" : "")
            FileHandle.standardOutput.write(Data(text.utf8))
        } else if done == total || now.timeIntervalSince(lastPrinted) >= 5 {
            print(line)
            lastPrinted = now
        }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                         : String(format: "%d:%02d", s / 60, s % 60)
    }
}
