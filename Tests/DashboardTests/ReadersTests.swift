// The readers on their own: the live log reader (incremental, half-written lines, rewrites), the
// config reader, the Markdown renderer, the runs scan, and the path gate.
import Foundation
import Testing
@testable import Dashboard

@Suite struct ReadersTests {
    @Test func logStoreReadsOnlyCompleteAppendedLines() async throws {
        let fixture = try RunsFixture()
        defer { fixture.remove() }
        let store = LogStore()
        let url = fixture.url("r/log.csv")
        try fixture.write(RunsFixture.header + "\n0,0,,,0.2,,0,,0\n1,0,0.3,0.3,,,1e-05,0.9,0\n", to: "r/log.csv")
        #expect(await store.rows(url).map(\.step) == [0, 1])

        // Half a row (the trainer is mid-write): not read yet, then read once complete.
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("2,0,0.28,0.2".utf8))
        #expect(await store.rows(url).map(\.step) == [0, 1])
        try handle.write(contentsOf: Data("98,,,2e-05,0.7,0\n3,0,nan,0.29,,,2e-05,inf,1\n".utf8))
        try handle.close()
        let rows = await store.rows(url)
        #expect(rows.map(\.step) == [0, 1, 2, 3])
        #expect(rows[2].smoothedLoss == 0.298 && rows[2].lr == 2e-5)
        #expect(rows[3].trainLoss == nil && rows[3].gradNorm == nil && rows[3].nonFinite == 1)

        // Rewritten (a resumed run): read again from the start.
        try fixture.write(RunsFixture.header + "\n0,0,,,0.25,,0,,0\n", to: "r/log.csv")
        #expect(await store.rows(url).map(\.valLoss) == [0.25])
        try FileManager.default.removeItem(at: url)
        #expect(await store.rows(url).isEmpty)
    }

    @Test func logColumnsFollowTheHeader() throws {
        let columns = try #require(LogColumns(header: "epoch,step,val_loss,extra,lr"))
        let row = try #require(columns.row("3,120,0.11,whatever,1e-4"))
        #expect(row == LogRow(step: 120, epoch: 3, valLoss: 0.11, lr: 1e-4))
        #expect(columns.row("3,,0.11,x,1") == nil)
        #expect(LogColumns(header: "a,b,c") == nil)
    }

    @Test func configFileReadsTheTrainersTOML() {
        let text = """
        title = "top # not a comment"
        [data]
        captions = "blip_plus"   # a comment
        flip = false
        resolution = 512
        [samples]
        guidance = 7.5
        prompts = [
            "a \\"quoted\\" rose",
            'literal \\ path',
        ]
        seeds = [1, 2, 3]
        nested = [[1, 2], ["a"]]
        weird = 1979-05-27T07:32:00Z
        [output]
        big = 1_000
        """
        let config = ConfigFile(parsing: text)
        #expect(config.sections.map(\.name) == ["", "data", "samples", "output"])
        #expect(config["", "title"] == .string("top # not a comment"))
        #expect(config["data", "captions"] == .string("blip_plus"))
        #expect(config["data", "flip"] == .bool(false))
        #expect(config["data", "resolution"] == .number(512))
        #expect(config["samples", "guidance"] == .number(7.5))
        #expect(config["samples", "prompts"] == .array([.string("a \"quoted\" rose"), .string("literal \\ path")]))
        #expect(config["samples", "seeds"] == .array([.number(1), .number(2), .number(3)]))
        #expect(config["samples", "nested"] == .array([.array([.number(1), .number(2)]), .array([.string("a")])]))
        #expect(config["samples", "weird"] == .raw("1979-05-27T07:32:00Z"))
        #expect(config["output", "big"] == .number(1000))
        #expect(ConfigFile.value("inf") == .raw("inf"))
    }

    @Test func markdownRendering() {
        let md = MarkdownRenderer(base: "pipe", runs: ["r1": "pipe/r1"])
        let html = md.render("""
        ## Results & notes

        Some *emphasis*, `code <b>`, a [web link](https://example.org/x?a=1&b=2).

        - one
        - two

        1. first
        2. second

        | run | loss \\| val |
        |---|---:|
        | r1 | 0.1 |
        | other | 0.2 |

        ![grid](compare/grid.png) ![far](https://example.org/x.png) ![up](../../etc/passwd)
        [escape](../../secret.txt) <img src=x onerror=alert(1)>
        """)
        #expect(html.contains("<h2>Results &amp; notes</h2>"))
        #expect(html.contains("<em>emphasis</em>"))
        #expect(html.contains("<code>code &lt;b&gt;</code>"))
        #expect(html.contains("<a href=\"https://example.org/x?a=1&amp;b=2\" target=\"_blank\" rel=\"noopener noreferrer\">web link</a>"))
        #expect(html.contains("<ul><li>one</li><li>two</li></ul>"))
        #expect(html.contains("<ol><li>first</li><li>second</li></ol>"))
        #expect(html.contains("<th style=\"text-align:right\">loss | val</th>"))
        #expect(html.contains("<td><a href=\"#/run/pipe/r1\">r1</a></td><td style=\"text-align:right\">0.1</td>"))
        #expect(html.contains("<td>other</td>"))
        #expect(html.contains("<img src=\"/files/pipe/compare/grid.png\" alt=\"grid\">"))
        // Images are never fetched from elsewhere, and nothing resolves above runs/.
        #expect(!html.contains("example.org/x.png"))
        #expect(html.contains("[image: far]") && html.contains("[image: up]"))
        #expect(!html.contains("secret.txt\""))
        #expect(html.contains("&lt;img src=x onerror=alert(1)&gt;"))
        #expect(md.resolve("../r2/log.csv") == "r2/log.csv")
        #expect(md.resolve("../../x") == nil)
    }

    @Test func scanFindsRunsPipelinesAndSkipsTheRest() throws {
        let fixture = try RunsFixture()
        defer { fixture.remove() }
        try fixture.write("h", to: "solo/log.csv")
        try fixture.write("[training]\nmax_steps = 5\n", to: "fresh/config.toml")
        try fixture.write("# p", to: "pipe/summary.md")
        try fixture.write("[pipeline]\n", to: "pipe/config.toml")
        try fixture.write("h", to: "pipe/a/log.csv")
        try fixture.write("h", to: "pipe/group/b/log.csv")
        try fixture.write("h", to: ".trash/old/log.csv")
        try fixture.write("h", to: "solo/samples/inner/log.csv")
        try fixture.write("# side by side", to: "side/summary.md")
        try FileManager.default.createSymbolicLink(at: fixture.url("linked-out"), withDestinationURL: fixture.base.appendingPathComponent("outside"))
        try fixture.write("h", to: "../outside/log.csv")

        let scan = try RunsRoot(fixture.root).scan()
        #expect(scan.runs.map(\.id) == ["fresh", "pipe/a", "pipe/group/b", "solo"])
        #expect(scan.pipelines.map(\.id) == ["pipe", "side"])
        #expect(scan.run("pipe/group/b")?.pipeline == "pipe")
        #expect(scan.run("pipe/group/b")?.group == "pipe/group")
        #expect(scan.run("solo")?.pipeline == nil)
    }

    @Test func pathGate() throws {
        let fixture = try RunsFixture.standard()
        defer { fixture.remove() }
        let root = try RunsRoot(fixture.root)
        #expect(try root.file("alpha/log.csv").lastPathComponent == "log.csv")
        #expect(throws: PathRejection.forbiddenComponent("..")) { try root.file("alpha/../beta/log.csv") }
        #expect(throws: PathRejection.forbiddenComponent("")) { try root.file("alpha//log.csv") }
        #expect(throws: PathRejection.forbiddenComponent("/")) { try root.file("/etc/passwd") }
        #expect(throws: PathRejection.empty) { try root.file("") }
        #expect(throws: PathRejection.notFound("alpha")) { try root.file("alpha") }
        #expect(throws: PathRejection.badEncoding("%e0%80")) { try root.file(encoded: "%e0%80") }
        #expect(throws: PathRejection.forbiddenComponent("%2e%2e")) { try root.file(encoded: "%252e%252e") }
        #expect(throws: (any Error).self) { try RunsRoot(fixture.base.appendingPathComponent("missing")) }
        #expect(throws: (any Error).self) { try RunsRoot(fixture.base.appendingPathComponent("secret.txt")) }
    }
}
