// Off loopback only on purpose: --allow-remote, then a token that every route checks (query once, then an
// HttpOnly, SameSite=Strict cookie); loopback without a token works as before.
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Dashboard

@Suite struct AccessTests {
    @Test func loopbackIsTheOnlyAddressWithoutAllowRemote() throws {
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"] {
            #expect(DashboardAccess.isLoopback(host), "\(host)")
            #expect(try DashboardAccess.forHost(host, allowRemote: false, token: nil).token == nil)
        }
        for host in ["0.0.0.0", "::", "192.168.1.5", "128.0.0.1", "127.0.0.1.example.com", "example.com"] {
            #expect(!DashboardAccess.isLoopback(host), "\(host)")
            let error = #expect(throws: DashboardError.self) { try DashboardAccess.forHost(host, allowRemote: false, token: nil) }
            #expect(error?.description.contains("--allow-remote") == true && error?.description.contains("--host \(host)") == true)
        }
        // Remote: a fresh 256-bit token each time, unless one is given.
        let a = try DashboardAccess.forHost("0.0.0.0", allowRemote: true, token: nil).token
        let b = try DashboardAccess.forHost("0.0.0.0", allowRemote: true, token: nil).token
        #expect(a?.count == 64 && a?.allSatisfy(\.isHexDigit) == true && a != b)
        #expect(try DashboardAccess.forHost("0.0.0.0", allowRemote: true, token: "my-own-token-12345").token == "my-own-token-12345")
        #expect(throws: DashboardError.self) { try DashboardAccess.forHost("0.0.0.0", allowRemote: true, token: "short") }
        #expect(throws: DashboardError.self) { try DashboardAccess.forHost("0.0.0.0", allowRemote: true, token: "has spaces and ; semicolons") }
        // The server itself refuses a remote address without a token.
        let fixture = try RunsFixture.standard()
        defer { fixture.remove() }
        #expect(throws: DashboardError.self) { try DashboardServer(runs: fixture.root, host: "0.0.0.0", port: 0) }
    }

    @Test func theTokenIsComparedWhole() {
        let access = DashboardAccess(token: "abcdef0123456789")
        #expect(access.accepts("abcdef0123456789"))
        for wrong in [nil, "", "abcdef012345678", "abcdef01234567890", "abcdef0123456788", "Abcdef0123456789"] {
            #expect(!access.accepts(wrong), "\(wrong ?? "nil")")
        }
        #expect(DashboardAccess.local.accepts(nil))
    }

    @Test func everyRouteNeedsTheTokenThenTheCookie() async throws {
        let fixture = try RunsFixture.standard()
        defer { fixture.remove() }
        let token = "0123456789abcdef0123456789abcdef"
        let server = try DashboardServer(runs: fixture.root, host: "0.0.0.0", port: 0, access: DashboardAccess(token: token))
        #expect(server.url(port: 8765) == "http://localhost:8765/?token=\(token)")
        let routes = ["/", "/api/index", "/api/run?id=alpha", "/files/alpha/log.csv", "/thumb/alpha/samples/step_000010/p0_s1.png?w=64"]
        try await server.application().test(.router) { client in
            for uri in routes {
                let refused = try await client.execute(uri: uri, method: .get)
                #expect(refused.status == .unauthorized, "\(uri)")
                #expect(!String(buffer: refused.body).contains("alpha/samples"), "\(uri)")
                let wrong = try await client.execute(uri: uri, method: .get, headers: [.cookie: "inkwell_dashboard_token=\(token.dropLast())0"])
                #expect(wrong.status == .unauthorized, "\(uri)")
                let join = uri.contains("?") ? "&" : "?"
                #expect(try await client.execute(uri: uri + join + "token=x\(token)", method: .get).status == .unauthorized, "\(uri)")
            }
            // The printed address: served, and the token kept as a cookie the page's requests carry.
            let first = try await client.execute(uri: "/?token=\(token)", method: .get)
            #expect(first.status == .ok)
            let cookie = try #require(first.headers[.setCookie])
            #expect(cookie.hasPrefix("inkwell_dashboard_token=\(token)"))
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"), "\(cookie)")
            for uri in routes {
                let response = try await client.execute(uri: uri, method: .get, headers: [.cookie: "other=1; inkwell_dashboard_token=\(token)"])
                #expect(response.status == .ok, "\(uri)")
            }
        }
    }
}
