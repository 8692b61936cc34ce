// Ctrl-C, SIGTERM and SIGHUP as a request to stop: the first asks the running stage to stop at its next
// safe point (the trainer saves its state, prepare and caption their manifests, then the command returns);
// a second one quits at once, which is safe too because every file is written through a temporary name and
// a rename. SIGTERM (a scheduler, `kill`, a container stopping) and SIGHUP (a closed terminal or SSH session)
// save the same way as Ctrl-C. A data-parallel rank also stops when its launcher dies (the kernel's signal,
// which may come more than once and never means "quit now").
import Foundation
import Glibc

final class Interruption: @unchecked Sendable {
    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    private let lock = NSLock()
    private var count = 0
    private var first: Int32?
    private var sources: [DispatchSourceSignal] = []

    private var once: Set<Int32> = []
    private var quiet = false
    private var relayed: (@Sendable (Int32) -> Void)?

    /// `stopOnce`: further signals that ask for a stop, however often they come. `quiet`: say nothing (a
    /// data-parallel rank other than 0: a terminal's Ctrl-C reaches every rank, and rank 0 speaks for them).
    static func install(stopOnce: [Int32] = [], quiet: Bool = false) -> Interruption {
        let interruption = Interruption()
        interruption.once = Set(stopOnce)
        interruption.quiet = quiet
        for number in signals + stopOnce {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { interruption.receive(number) }
            source.resume()
            interruption.sources.append(source)
        }
        return interruption
    }

    /// Also hands every signal to `receiver` (nil: to nobody): the ranks of a launcher this command runs
    /// (RankLauncher's relay), which stop with it, or quit with it on the second.
    func relay(to receiver: (@Sendable (Int32) -> Void)?) {
        lock.lock()
        defer { lock.unlock() }
        relayed = receiver
    }

    var requested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return count > 0
    }

    /// The first signal's name ("SIGINT", "SIGTERM", "SIGHUP"), which the trainer records in status.json.
    var signalName: String? {
        lock.lock()
        defer { lock.unlock() }
        return first.map(Self.name)
    }

    static func name(_ number: Int32) -> String {
        switch number {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGHUP: return "SIGHUP"
        case SIGUSR1: return "SIGUSR1"
        default: return "signal \(number)"
        }
    }

    private func receive(_ number: Int32) {
        lock.lock()
        if once.contains(number) {
            let repeated = count > 0
            count = max(count, 1)
            if first == nil { first = number }
            lock.unlock()
            if !repeated { say("\nthe launcher is gone: stopping at the next safe point\n") }
            return
        }
        count += 1
        if first == nil { first = number }
        let received = count, relayed = relayed
        lock.unlock()
        relayed?(number)
        let name = number == SIGINT ? "Ctrl-C" : String(cString: strsignal(number))
        if received == 1 {
            say("\n\(name): stopping at the next safe point (again to quit now)\n")
        } else {
            say("\n\(name) again: quitting now; what was last saved stands (no file is left half-written)\n")
            // _exit, not exit: static destructors must not run under threads still computing (a collective, a step).
            fflush(nil)
            _exit(128 + number)
        }
    }

    private func say(_ text: String) {
        if !quiet { FileHandle.standardError.write(Data(text.utf8)) }
    }
}
