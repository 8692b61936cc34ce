// Who may read the dashboard. On a loopback address only this machine's users can connect, and the page
// needs nothing more; on any other address the runs folder (checkpoints, samples, configs) would be open to
// the network, so that takes `--allow-remote` and a token that every request must carry.
import Foundation

public struct DashboardAccess: Sendable {
    /// The secret every request must carry (query `token=` once, then the cookie); nil: none needed.
    public let token: String?

    /// No token: for a loopback host.
    public static let local = DashboardAccess(token: nil)

    public init(token: String?) { self.token = token }

    /// The access for serving on `host`: none needed on loopback unless a token is given; elsewhere only with
    /// `allowRemote`, and then with `token` or a fresh one.
    public static func forHost(_ host: String, allowRemote: Bool, token: String?) throws -> DashboardAccess {
        if let token {
            guard token.count >= 16, token.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_".contains($0)) }) else {
                throw DashboardError("--token must be at least 16 letters, digits, '-' or '_' (it goes in a URL and a cookie)")
            }
        }
        if isLoopback(host) { return DashboardAccess(token: token) }
        guard allowRemote else {
            throw DashboardError("--host \(host) would serve runs/ (checkpoints, samples, configs) to the network: "
                + "add --allow-remote to mean it (a token is then required: --token, or one is generated), "
                + "or keep the default --host 127.0.0.1")
        }
        return DashboardAccess(token: token ?? generatedToken())
    }

    /// 127.0.0.0/8, ::1 and localhost: addresses no other machine can reach.
    public static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare.lowercased() == "localhost" || bare == "::1" || bare == "0:0:0:0:0:0:0:1" { return true }
        let parts = bare.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// 32 random bytes from the system's CSPRNG (getrandom), as 64 hex digits.
    public static func generatedToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }

    /// Whether `offered` is the token, in time independent of where they differ (no guessing it byte by byte).
    public func accepts(_ offered: String?) -> Bool {
        guard let token else { return true }
        guard let offered else { return false }
        let a = Array(token.utf8), b = Array(offered.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
