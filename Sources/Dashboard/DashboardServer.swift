// The dashboard as a Hummingbird application: the routes over one runs folder, bound to 127.0.0.1 by
// default (the folder holds a person's work; another address needs `DashboardAccess` with a token). Port 0
// asks the system for a free port, which `onRunning` reports (the tests use it). Connections that sit idle,
// or stop halfway through a request, are closed after `idleTimeout`; so is any connection whose request
// was refused (CONNECT and the like) or was not HTTP/1.x.
import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore

public struct DashboardServer: Sendable {
    public let data: DashboardData
    public let host: String
    public let port: Int
    public let access: DashboardAccess
    public let idleTimeout: Duration
    let routes: DashboardRoutes

    public init(runs: URL, host: String = "127.0.0.1", port: Int = 8765, access: DashboardAccess = .local,
                idleTimeout: Duration = .seconds(30)) throws {
        guard (0...65535).contains(port) else { throw DashboardError("port must be 0 to 65535, got \(port)") }
        guard !host.isEmpty else { throw DashboardError("host must not be empty") }
        guard access.token != nil || DashboardAccess.isLoopback(host) else {
            throw DashboardError("serving on \(host) needs a token (DashboardAccess.forHost)")
        }
        self.data = DashboardData(root: try RunsRoot(runs))
        routes = try DashboardRoutes(data: data, access: access)
        self.host = host
        self.port = port
        self.access = access
        self.idleTimeout = idleTimeout
    }

    /// A router with the dashboard's routes; `before` may add middleware ahead of them.
    public func router(before: (Router<BasicRequestContext>) -> Void = { _ in }) -> Router<BasicRequestContext> {
        let router = Router(options: .autoGenerateHeadEndpoints)
        before(router)
        routes.register(on: router)
        return router
    }

    /// The application, not yet running. `onRunning` receives the bound port.
    public func application(router: Router<BasicRequestContext>? = nil,
                            onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let (seconds, attoseconds) = idleTimeout.components
        let idle = TimeAmount.nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        return Application(router: router ?? self.router(),
                           server: HTTPServerBuilder { responder in
                               GuardedHTTP1Channel(inner: HTTP1Channel(responder: responder, configuration: .init(
                                   additionalChannelHandlers: [RefusedRequestCloser()], idleTimeout: idle)))
                           },
                           configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "inkwell-dashboard"),
                           onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) })
    }

    /// The address to open, with the token when one is needed.
    public func url(port: Int) -> String {
        Self.url(host: host, port: port) + (access.token.map { "?token=\($0)" } ?? "")
    }

    /// Serves until SIGINT or SIGTERM.
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await application(onRunning: onRunning).runService()
    }

    /// The address to open in a browser (IPv6 hosts bracketed, a wildcard host shown as localhost).
    public static func url(host: String, port: Int) -> String {
        let shown = host == "0.0.0.0" || host == "::" ? "localhost" : host.contains(":") ? "[\(host)]" : host
        return "http://\(shown):\(port)/"
    }
}
