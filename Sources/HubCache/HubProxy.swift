// Which proxy a Hub request goes through, read from the environment as huggingface_hub reads it (its HTTP
// client, httpx, from Python's urllib.request.getproxies_environment, then httpx's get_environment_proxies):
//   http_proxy / HTTP_PROXY     for http:// addresses     (the lowercase name wins; an empty one unsets)
//   https_proxy / HTTPS_PROXY   for https:// addresses
//   all_proxy / ALL_PROXY       for either, when the scheme's own is not set
//   no_proxy / NO_PROXY         comma-separated hosts that go direct: `*` (all), `example.com` (it and its
//                               subdomains), `.example.com` / `*.example.com` (subdomains only), an IP, an IP
//                               network (`10.0.0.0/8`), `localhost`, `host:port`, `[::1]`, `scheme://host`
// A proxy address without a scheme is http://. AsyncHTTPClient tunnels every request through an HTTP proxy
// with CONNECT (plain http too) and speaks SOCKS5 to a socks5:// one.
import Foundation

public struct HubProxy: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable { case http, socks5 }
    public var kind: Kind
    public var host: String
    public var port: Int
    /// `user:password@` of the address, sent as Proxy-Authorization: Basic.
    public var username: String?
    public var password: String?

    /// The address as the user gave it, without the password.
    public var description: String {
        "\(kind.rawValue)://" + (username.map { "\($0)@" } ?? "") + (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
    }
}

public struct HubProxies: Sendable, Equatable {
    /// By scheme: "http", "https", "all".
    public var proxies: [String: HubProxy] = [:]
    /// NO_PROXY's entries, as written.
    public var bypass: [String] = []
    /// A setting that cannot be used, with the variable's name: reported before any request.
    public var problem: String?

    public init() {}

    public init(environment: [String: String]) {
        // getproxies_environment: every `*_proxy` in any case, then the lowercase ones over them.
        var settings: [String: (name: String, value: String)] = [:]
        for (name, value) in environment where name.lowercased().hasSuffix("_proxy") && !value.isEmpty {
            settings[String(name.lowercased().dropLast(6))] = (name, value)
        }
        for (name, value) in environment where name.hasSuffix("_proxy") {
            let scheme = String(name.dropLast(6)).lowercased()
            if value.isEmpty { settings[scheme] = nil } else { settings[scheme] = (name, value) }
        }
        bypass = (settings["no"]?.value ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        if bypass.contains("*") { return }
        for scheme in ["http", "https", "all"] {
            guard let (name, value) = settings[scheme] else { continue }
            do {
                proxies[scheme] = try Self.parse(value)
            } catch let error as Invalid {
                problem = "\(name)=\(value): \(error.reason); set it to http://host:port (or socks5://host:port), or unset it"
            } catch {}
        }
    }

    /// The proxy for `url`, or nil to connect directly.
    public func proxy(for url: String) -> HubProxy? {
        guard !proxies.isEmpty, let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              let host = components.host?.lowercased() else { return nil }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        if bypass.contains(where: { Self.bypasses($0, scheme: scheme, host: host, port: port) }) { return nil }
        return proxies[scheme] ?? proxies["all"]
    }

    private struct Invalid: Error { let reason: String }

    /// `http://user:pass@host:port`, `host:port` (http), `socks5://host:port`.
    private static func parse(_ text: String) throws -> HubProxy {
        let withScheme = text.contains("://") ? text : "http://" + text
        guard let components = URLComponents(string: withScheme), let host = components.host, !host.isEmpty else {
            throw Invalid(reason: "not a proxy address")
        }
        let kind: HubProxy.Kind
        switch components.scheme?.lowercased() {
        case "http": kind = .http
        case "socks5", "socks5h": kind = .socks5
        case "https": throw Invalid(reason: "a TLS connection to the proxy itself (https://) is not supported")
        default: throw Invalid(reason: "unknown proxy scheme '\(components.scheme ?? "")'")
        }
        if kind == .socks5 && components.user != nil { throw Invalid(reason: "SOCKS proxies with a user name are not supported") }
        let port = components.port ?? (kind == .socks5 ? 1080 : 80)
        return HubProxy(kind: kind, host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: port,
                        username: components.user.map { $0.removingPercentEncoding ?? $0 },
                        password: components.password.map { $0.removingPercentEncoding ?? $0 })
    }

    /// Whether one NO_PROXY entry sends this address direct (httpx's patterns: see the file's head).
    static func bypasses(_ entry: String, scheme: String, host: String, port: Int) -> Bool {
        var entry = entry.lowercased()
        var entryScheme: String?
        if let range = entry.range(of: "://") {
            entryScheme = String(entry[..<range.lowerBound])
            entry = String(entry[range.upperBound...])
            if entryScheme == "all" { entryScheme = nil }
        }
        if let entryScheme, entryScheme != scheme { return false }
        // An IP network: 192.168.0.0/16, [::1]/64 or ::1/64.
        if let slash = entry.firstIndex(of: "/") {
            let address = entry[..<slash].trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            guard let bits = Int(entry[entry.index(after: slash)...]) else { return false }
            return IPAddress(address).map { network in IPAddress(host).map { network.contains($0, prefix: bits) } ?? false } ?? false
        }
        // A port: host:1234, [::1]:1234 (a bare IPv6 address has colons but no port).
        var entryPort: Int?
        if entry.hasPrefix("[") {
            if let close = entry.firstIndex(of: "]") {
                entryPort = Int(entry[entry.index(after: close)...].dropFirst())
                entry = String(entry[entry.index(after: entry.startIndex)..<close])
            }
        } else if entry.filter({ $0 == ":" }).count == 1, let colon = entry.firstIndex(of: ":") {
            entryPort = Int(entry[entry.index(after: colon)...])
            entry = String(entry[..<colon])
        }
        if let entryPort, entryPort != port { return false }
        let host = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if IPAddress(entry) != nil || entry == "localhost" { return host == entry }
        if entry.hasPrefix("*.") { return host.hasSuffix(String(entry.dropFirst(1))) && host.count > entry.count - 1 }
        if entry.hasPrefix(".") { return host.hasSuffix(entry) && host.count > entry.count }
        let domain = entry.hasPrefix("*") ? String(entry.dropFirst()) : entry
        return host == domain || host.hasSuffix("." + domain)
    }
}

/// An IPv4 or IPv6 address as bytes, for NO_PROXY's networks.
struct IPAddress: Equatable {
    let bytes: [UInt8]

    init?(_ text: String) {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: v6) { Array($0) }
        } else {
            return nil
        }
    }

    /// Whether `other` is in this network of `prefix` bits.
    func contains(_ other: IPAddress, prefix: Int) -> Bool {
        guard other.bytes.count == bytes.count, prefix >= 0, prefix <= bytes.count * 8 else { return false }
        for bit in 0..<prefix where (bytes[bit / 8] ^ other.bytes[bit / 8]) & (0x80 >> UInt8(bit % 8)) != 0 { return false }
        return true
    }
}
