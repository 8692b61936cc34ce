import Foundation

/// A Process that runs `executable arguments…` as a shell starts it: with no signal blocked. The test runner's
/// threads block SIGINT, SIGTERM and SIGHUP, and a spawned process inherits that mask, under which a signal is
/// never lost; in a shell's child an ignored signal is dropped, so signal handling that works only while blocked
/// would pass a test and fail its users. Foundation cannot set a child's mask: the venv's Python clears it, gives
/// back the default to the signals it ignores itself (an ignored signal stays ignored across exec), and execs the
/// command (same pid).
public func shellProcess(_ executable: URL, _ arguments: [String]) -> Process {
    let process = Process()
    process.executableURL = Fixtures.packageRoot.appendingPathComponent(".venv/bin/python")
    process.arguments = ["-c", execUnblocked, executable.path] + arguments
    return process
}

private let execUnblocked = """
    import os, signal, sys
    for s in (signal.SIGPIPE, signal.SIGXFSZ): signal.signal(s, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    os.execv(sys.argv[1], sys.argv[1:])
    """
