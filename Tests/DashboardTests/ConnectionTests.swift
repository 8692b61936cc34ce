// The dashboard's connections over a raw socket: a CONNECT request and an HTTP/0.9 request line get an answer
// and a close; a connection left idle, or stopped halfway through a request, is closed after the idle timeout.
import Foundation
import Hummingbird
import Testing
@testable import Dashboard
#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP connection to 127.0.0.1 with a receive timeout.
final class RawConnection {
    let fd: Int32

    init(port: Int, receiveTimeout: Double) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DashboardError("socket() failed") }
        var timeout = timeval(tv_sec: Int(receiveTimeout), tv_usec: Int((receiveTimeout - receiveTimeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw DashboardError("connect() failed: \(errno)") }
    }

    deinit { close(fd) }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
    }

    /// Everything until the peer closes (`closed`), or until nothing came for the receive timeout.
    func readUntilClosed() -> (text: String, closed: Bool) {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { data += buffer[0..<n]; continue }
            // 0: an orderly close; -1 with EAGAIN: the timeout, still open; ECONNRESET: closed too.
            return (String(decoding: data, as: UTF8.self), n == 0 || errno == ECONNRESET)
        }
    }
}

@Suite struct ConnectionTests {
    func withServer(idleTimeout: Duration, _ body: (Int) async throws -> Void) async throws {
        let fixture = try RunsFixture.standard()
        defer { fixture.remove() }
        let server = try DashboardServer(runs: fixture.root, host: "127.0.0.1", port: 0, idleTimeout: idleTimeout)
        try await withLiveServer(server, router: server.router(), body)
    }

    @Test func connectAndHTTP09GetAnAnswerAndAClose() async throws {
        try await withServer(idleTimeout: .seconds(30)) { port in
            // Closed well before the 30 s idle timeout: by the answer itself.
            let connect = try RawConnection(port: port, receiveTimeout: 5)
            connect.send("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
            let (answer, closed) = connect.readUntilClosed()
            #expect(answer.hasPrefix("HTTP/1.1 405"), "\(answer)")
            #expect(closed, "the CONNECT connection stayed open")

            let old = try RawConnection(port: port, receiveTimeout: 5)
            old.send("GET /\r\n")
            let (reply, shut) = old.readUntilClosed()
            #expect(reply.hasPrefix("HTTP/1.1 400"), "\(reply)")
            #expect(shut, "the HTTP/0.9 connection stayed open")

            // A GET on the same kind of connection is answered and the connection kept for the next request.
            let kept = try RawConnection(port: port, receiveTimeout: 2)
            kept.send("GET /api/index HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let (index, ended) = kept.readUntilClosed()
            #expect(index.hasPrefix("HTTP/1.1 200") && !ended)
        }
    }

    @Test func idleAndHalfOpenConnectionsTimeOut() async throws {
        try await withServer(idleTimeout: .milliseconds(500)) { port in
            let idle = try RawConnection(port: port, receiveTimeout: 10)
            let started = Date()
            let (nothing, closed) = idle.readUntilClosed()
            #expect(closed && nothing.isEmpty)
            #expect(Date().timeIntervalSince(started) < 5, "closed after \(Date().timeIntervalSince(started)) s")

            let half = try RawConnection(port: port, receiveTimeout: 10)
            half.send("GET /api/index HTTP/1.1\r\nHost: localhost\r\n")  // the blank line never comes
            let (partial, shut) = half.readUntilClosed()
            #expect(shut && !partial.contains("200"), "\(partial)")

            let afterAnswer = try RawConnection(port: port, receiveTimeout: 10)
            afterAnswer.send("GET /api/index HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let (answered, ended) = afterAnswer.readUntilClosed()
            #expect(answered.hasPrefix("HTTP/1.1 200") && ended, "a kept-alive connection is closed once idle too")
        }
    }
}
