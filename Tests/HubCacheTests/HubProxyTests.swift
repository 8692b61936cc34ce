// Downloads through a proxy (reference/http_proxy.py), chosen from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY
// as huggingface_hub's own HTTP client chooses (reference/proxy_choice.py asks it).
import Foundation
import Testing
import TestSupport
@testable import HubCache

@Suite(.serialized) struct HubProxyTests {
    static let id = HubRepoID(HubServer.repo)!

    /// For each environment and address, the same proxy (or none) as httpx under huggingface_hub: lowercase names
    /// win, an empty lowercase one unsets, ALL_PROXY fills in, and NO_PROXY's forms (domains with and without a
    /// leading dot or `*.`, IPs, networks, ports, `localhost`, `*`) send the address direct.
    @Test func theChoiceIsHuggingfaceHubs() throws {
        let urls = ["https://huggingface.co/api/models/x", "http://huggingface.co/x", "https://cdn-lfs.hf.co/repos/a",
                    "https://example.com/", "https://www.example.com/", "https://notexample.com/", "https://a.internal/",
                    "https://internal/", "http://10.1.2.3:8000/", "http://11.1.2.3/", "http://127.0.0.1:5000/",
                    "http://localhost:1/", "http://mirror.lan:8080/x", "http://mirror.lan:9090/x", "http://[::1]:8000/"]
        let environments: [[String: String]] = [
            ["HTTPS_PROXY": "proxy.corp:3128", "http_proxy": "http://p2:8080",
             "NO_PROXY": "localhost,.internal,example.com,10.0.0.0/8,127.0.0.1,mirror.lan:8080,::1"],
            ["HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2", "ALL_PROXY": "http://all:3"],
            ["HTTP_PROXY": "http://upper:1", "http_proxy": "", "no_proxy": "*.hf.co,[::1]"],
            ["https_proxy": "http://p:1", "no_proxy": "*"],
            ["ALL_PROXY": "socks5://s:1080", "NO_PROXY": " huggingface.co , 127.0.0.0/8 "],
            [:],
        ]
        let cases = environments.map { ["env": $0, "urls": urls] as [String: Any] }
        let file = try temporaryDirectory().appendingPathComponent("cases.json")
        try JSONSerialization.data(withJSONObject: cases).write(to: file)
        let output = try runReference("proxy_choice.py", [file.path])
        let expected = try #require(JSONSerialization.jsonObject(with: Data(output.split(separator: "\n").last!.utf8)) as? [[Any]])
        var direct = 0, proxied = 0
        for (environment, answers) in zip(environments, expected) {
            let proxies = HubProxies(environment: environment)
            #expect(proxies.problem == nil)
            for (url, answer) in zip(urls, answers) {
                let theirs = answer as? String
                let ours = proxies.proxy(for: url)
                #expect(ours?.description == theirs, "\(environment) \(url)")
                if theirs == nil { direct += 1 } else { proxied += 1 }
            }
        }
        #expect(direct > 20 && proxied > 20)
    }

    /// The Hub and its CDN answer under names only the proxy resolves (hub.invalid, cdn.invalid): the download
    /// works, so every request went through the proxy, and the proxy saw both. The lowercase http_proxy wins over
    /// a dead HTTP_PROXY, as in huggingface_hub.
    @Test func theDownloadGoesThroughTheProxy() async throws {
        let server = try HubServer(["--cdn-host", "cdn.invalid"])
        let port = try #require(URLComponents(string: server.url)?.port)
        let proxy = try HTTPProxy(map: ["hub.invalid": "127.0.0.1", "cdn.invalid": "127.0.0.1"])
        let cache = try temporaryDirectory()
        let settings = HubSettings(environment: ["HF_ENDPOINT": "http://hub.invalid:\(port)", "HF_HUB_CACHE": cache.path,
                                                 "http_proxy": proxy.url, "HTTP_PROXY": "http://127.0.0.1:9"])
        let downloader = HubDownloader(client: HubClient(settings: settings))
        let plan = try await downloader.plan(Self.id)
        try await downloader.fetch(plan)
        let verify = try await HubDownloader(client: HubClient(settings: settings)).plan(Self.id)
        #expect(verify.cached.count == plan.files.count && plan.files.count == 10)
        let targets = Set(try proxy.targets())
        #expect(targets == ["hub.invalid:\(port)", "cdn.invalid:\(port)"], "\(targets)")
        // The server got every request, through the proxy's tunnels.
        let requests = try server.requests()
        #expect(requests.filter { $0.path.hasPrefix("/cdn/") && $0.method == "GET" }.count == 3)
    }

    /// NO_PROXY=localhost sends the CDN (at localhost) direct while the Hub (hub.invalid) still goes through the
    /// proxy; NO_PROXY naming the Hub too leaves the proxy unasked.
    @Test func noProxyBypassesIt() async throws {
        let server = try HubServer(["--cdn-host", "localhost"])
        let port = try #require(URLComponents(string: server.url)?.port)
        let proxy = try HTTPProxy(map: ["hub.invalid": "127.0.0.1"])
        let cache = try temporaryDirectory()
        let settings = HubSettings(environment: ["HF_ENDPOINT": "http://hub.invalid:\(port)", "HF_HUB_CACHE": cache.path,
                                                 "HTTP_PROXY": proxy.url, "NO_PROXY": "example.com, localhost"])
        let downloader = HubDownloader(client: HubClient(settings: settings))
        try await downloader.fetch(try await downloader.plan(Self.id))
        #expect(Set(try proxy.targets()) == ["hub.invalid:\(port)"])
        #expect(try server.requests().filter { $0.path.hasPrefix("/cdn/") && $0.method == "GET" }.count == 3)

        let bypassed = try HTTPProxy()
        let direct = HubSettings(environment: ["HF_ENDPOINT": server.url, "HF_HUB_CACHE": try temporaryDirectory().path,
                                               "HTTP_PROXY": bypassed.url, "NO_PROXY": "127.0.0.1,localhost"])
        let second = HubDownloader(client: HubClient(settings: direct))
        try await second.fetch(try await second.plan(Self.id))
        #expect(try bypassed.targets().isEmpty)
    }

    /// A proxy setting that cannot work is reported, naming the variable, before any request.
    @Test func aBadProxyIsReportedFirst() async throws {
        let server = try HubServer()
        let settings = HubSettings(environment: ["HF_ENDPOINT": server.url, "HF_HUB_CACHE": try temporaryDirectory().path,
                                                 "HTTPS_PROXY": "https://proxy.corp:443"])
        await #expect { _ = try await HubDownloader(client: HubClient(settings: settings)).plan(Self.id) } throws: {
            guard case HubError.badProxy(let text) = $0 else { return false }
            return text.hasPrefix("HTTPS_PROXY=https://proxy.corp:443: ") && text.contains("http://host:port")
        }
        #expect(try server.requests().isEmpty)
        // A proxy that is not there: the error says which proxy was tried.
        let dead = HubSettings(environment: ["HF_ENDPOINT": server.url, "HF_HUB_CACHE": try temporaryDirectory().path,
                                             "HTTP_PROXY": "127.0.0.1:9"])
        await #expect { _ = try await HubDownloader(client: HubClient(settings: dead)).plan(Self.id) } throws: {
            "\($0)".contains("through the proxy http://127.0.0.1:9")
        }
    }
}
