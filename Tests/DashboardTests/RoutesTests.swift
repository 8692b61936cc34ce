// The JSON routes over a synthetic runs/ folder, through Hummingbird's router test client: what each
// route reports, and that the answers follow the folder as the trainer changes it (appended rows,
// new runs, a rewritten log).
import Foundation
import Hummingbird
import HummingbirdTesting
import Imaging
@testable import RunFiles
import Testing
@testable import Dashboard

func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(String(buffer: response.body).utf8))
}

/// Runs `body` against the dashboard over a fresh standard fixture, then deletes the fixture.
func withDashboard(_ body: @Sendable (RunsFixture, any TestClientProtocol, DashboardServer) async throws -> Void) async throws {
    let fixture = try RunsFixture.standard()
    defer { fixture.remove() }
    let server = try DashboardServer(runs: fixture.root, host: "127.0.0.1", port: 0)
    try await server.application().test(.router) { client in try await body(fixture, client, server) }
}

@Suite struct RoutesTests {
    @Test func indexListsRunsAndPipelines() async throws {
        try await withDashboard { _, client, _ async throws in
            let response = try await client.execute(uri: "/api/index", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json; charset=utf-8")
            #expect(response.headers[.cacheControl] == "no-store")
            let index = try decode(RunsIndexResponse.self, response)
            #expect(index.runs.map(\.id) == ["alpha", "beta", "pipe/r1", "pipe/r2"])
            #expect(index.pipelines.map(\.id) == ["pipe"])

            let alpha = try #require(index.runs.first { $0.id == "alpha" })
            #expect(alpha.status == .finished)
            #expect(alpha.lastStep == 40)
            #expect(alpha.maxSteps == 40)
            // state/trainer.json says 20; the log's lowest val loss is at 30: the trainer's record wins.
            #expect(alpha.bestStep == 20)
            #expect(alpha.latestSample?.step == 40)
            #expect(alpha.group == nil && alpha.pipeline == nil)

            #expect(!alpha.statusGuessed && alpha.trainer == nil)

            let beta = try #require(index.runs.first { $0.id == "beta" })
            // No status.json (a run from before it): training, because its log was written just now, said to be a guess.
            #expect(beta.status == .training && beta.statusGuessed && beta.trainer == nil)
            #expect(beta.lastStep == 25)
            // No state: the lowest val_loss in the log (U-shaped around 20).
            #expect(beta.bestStep == 20)
            #expect(beta.lastValLoss == RunsFixture.valLoss(step: 20, bestAt: 20, offset: 0.01))

            let r1 = try #require(index.runs.first { $0.id == "pipe/r1" })
            #expect(r1.name == "r1" && r1.group == "pipe" && r1.pipeline == "pipe")
            let pipe = try #require(index.pipelines.first)
            #expect(pipe.runs == ["pipe/r1", "pipe/r2"])
            #expect(pipe.grid == "pipe/compare/grid.png")
            #expect(pipe.compareHTML == "pipe/compare/index.html")
            // One plot per name, SVG preferred over PNG.
            #expect(pipe.plots == ["pipe/plots/clip_score.png", "pipe/plots/val_loss.svg"])
        }
    }

    @Test func logRowsSinceAStep() async throws {
        try await withDashboard { fixture, client, _ async throws in
            let all = try decode(LogResponse.self, try await client.execute(uri: "/api/log?id=beta&since=-1", method: .get))
            #expect(all.rows.count == 26)
            #expect(all.rows.map(\.step) == Array(0...25))
            #expect(all.lastStep == 25 && all.reset == false)
            #expect(all.sampleSteps == [0, 10, 20])
            // Empty cells are absent, not zero: step 0 has no train loss, step 5 no val loss.
            #expect(all.rows[0].trainLoss == nil && all.rows[0].validationLoss != nil)
            #expect(all.rows[5].validationLoss == nil && all.rows[5].trainLoss != nil)
            #expect(all.rows[10].validationLoss == RunsFixture.valLoss(step: 10, bestAt: 20, offset: 0.01))
            #expect(all.rows[10].clipScore != nil)
            #expect(all.rows[3].learningRate.map { $0 > 0 } == true)

            let tail = try decode(LogResponse.self, try await client.execute(uri: "/api/log?id=beta&since=20", method: .get))
            #expect(tail.rows.map(\.step) == [21, 22, 23, 24, 25])

            // The trainer appends a row (one with a non-finite loss): the next poll returns just that row.
            try fixture.append(RunsFixture.row(step: 26, train: .nan, smoothed: 0.1, val: 0.105, lr: 5e-5), to: "beta")
            let next = try decode(LogResponse.self, try await client.execute(uri: "/api/log?id=beta&since=25", method: .get))
            #expect(next.rows.map(\.step) == [26])
            #expect(next.rows[0].trainLoss == nil)
            #expect(next.rows[0].validationLoss == 0.105)
            #expect(next.bestStep == 26)
            let none = try decode(LogResponse.self, try await client.execute(uri: "/api/log?id=beta&since=26", method: .get))
            #expect(none.rows.isEmpty && none.lastStep == 26)

            // A resumed run rewrites its log shorter: a poll past its end gets the whole log back, flagged.
            let kept = RunsFixture.rows(steps: 12, bestAt: 20, offset: 0.01, samplesEvery: 10, maxSteps: 40)
            try fixture.writeLog(kept, to: "beta")
            let reset = try decode(LogResponse.self, try await client.execute(uri: "/api/log?id=beta&since=26", method: .get))
            #expect(reset.reset)
            #expect(reset.rows.map(\.step) == Array(0...12))
        }
    }

    @Test func newRunsAppearWithoutRestart() async throws {
        try await withDashboard { fixture, client, _ async throws in
            let before = try decode(RunsIndexResponse.self, try await client.execute(uri: "/api/index", method: .get))
            #expect(!before.runs.contains { $0.id == "gamma" })
            // A run that has written only its config so far, then its first log row.
            try fixture.writeConfig(RunsFixture.config(maxSteps: 100, samplesEvery: 50, captions: .vanilla), to: "gamma")
            let started = try decode(RunsIndexResponse.self, try await client.execute(uri: "/api/index", method: .get))
            let gamma = try #require(started.runs.first { $0.id == "gamma" })
            #expect(gamma.status == .new && gamma.lastStep == nil && gamma.maxSteps == 100)
            try fixture.writeLog([RunsFixture.row(step: 0, train: nil, smoothed: nil, val: 0.2, lr: 0)], to: "gamma")
            let logged = try decode(RunsIndexResponse.self, try await client.execute(uri: "/api/index", method: .get))
            #expect(logged.runs.first { $0.id == "gamma" }?.status == .training)
            #expect(logged.runs.first { $0.id == "gamma" }?.lastStep == 0)
            // The detail route knows it at once too.
            let detail = try await client.execute(uri: "/api/run?id=gamma", method: .get)
            #expect(detail.status == .ok)
        }
    }

    @Test func runDetail() async throws {
        try await withDashboard { _, client, _ async throws in
            let detail = try decode(RunDetail.self, try await client.execute(uri: "/api/run?id=alpha", method: .get))
            #expect(detail.summary.id == "alpha")
            #expect(detail.samples.steps == [0, 10, 20, 30, 40])
            #expect(detail.samples.seeds == [1, 2])
            #expect(detail.samples.images.count == 5 * 2 * 2)
            #expect(detail.samples.images.first == SampleImage(step: 0, prompt: 0, seed: 1, path: "alpha/samples/step_000000/p0_s1.png"))
            // Prompt text comes from the PNG's parameters chunk, not the config's list.
            #expect(detail.samples.prompts.map(\.text) == RunsFixture.prompts)
            #expect(detail.samples.prompts[1].parameters?.contains("Seed: ") == true)
            #expect(detail.best == BestCheckpoint(step: 20, valLoss: RunsFixture.valLoss(step: 20, bestAt: 30, offset: 0),
                                                  source: .state, path: "alpha/lora/alpha-best.safetensors"))
            #expect(detail.state?.step == 40 && detail.state?.seconds == 12.5)
            // "nan" in trainer.json reads as absent.
            #expect(detail.state?.lastValidationLoss == nil)
            #expect(detail.checkpoints.map(\.name) == ["alpha-best.safetensors", "alpha.safetensors", "alpha-step000010.safetensors",
                                                       "alpha-step000020.safetensors", "alpha-step000030.safetensors",
                                                       "alpha-step000040.safetensors"])
            #expect(detail.checkpoints[2].step == 10 && detail.checkpoints[2].kind == .step)
            let config = try #require(detail.config)
            // Every section the trainer writes, in the file's (sorted) order.
            #expect(config.sections.map(\.name) == ["data", "lora", "model", "optimizer", "output", "samples", "schedule",
                                                    "training", "validation"])
            #expect(config["training", "max_steps"] == .number(40))
            #expect(config["samples", "prompts"] == .array([.string("config prompt zero"), .string("config prompt one")]))
            #expect(config["lora", "targets"] == .array(["to_q", "to_k", "to_v", "to_out.0"].map(ConfigValue.string)))
            #expect(detail.configPath == "alpha/config.toml")

            let beta = try decode(RunDetail.self, try await client.execute(uri: "/api/run?id=beta", method: .get))
            #expect(beta.best?.source == .log && beta.best?.step == 20 && beta.best?.path == nil)
            #expect(beta.summary.status == .training)
        }
    }

    @Test func compareAcrossRuns() async throws {
        try await withDashboard { fixture, client, _ async throws in
            func compare(_ query: String) async throws -> CompareResponse {
                try decode(CompareResponse.self, try await client.execute(uri: "/api/compare?" + query, method: .get))
            }
            let three = "id=pipe/r1&id=pipe/r2&id=beta"
            let all = try await compare(three)
            #expect(all.runs.map(\.id) == ["pipe/r1", "pipe/r2", "beta"])
            #expect(all.runs[0].valLoss.map(\.step) == [0, 10, 20, 30, 40])
            #expect(all.runs[2].valLoss.map(\.step) == [0, 10, 20])
            #expect(all.runs.map(\.bestStep) == [20, 30, 20])
            #expect(all.runs[2].sampleSteps == [0, 10, 20])
            // The picker's steps; by default the newest step every run has (beta has reached 20 only).
            #expect(all.steps == [10, 20, 30, 40] && all.commonSteps == [10, 20])
            #expect(all.pick == .step(20))
            #expect(all.runs[0].samples.map(\.path) == ["pipe/r1/samples/step_000020/p0_s1.png", "pipe/r1/samples/step_000020/p0_s2.png",
                                                           "pipe/r1/samples/step_000020/p1_s1.png", "pipe/r1/samples/step_000020/p1_s2.png"])
            #expect(all.runs.allSatisfy { $0.samples.count == 4 && $0.samples.allSatisfy { $0.step == 20 } })
            // One base column (the runs share model.path): the first run's step-0 images.
            #expect(all.base.map(\.run) == ["pipe/r1"] && all.base.first?.model == "models/sd15")
            #expect(all.base.first?.samples.map(\.path) == ["pipe/r1/samples/step_000000/p0_s1.png", "pipe/r1/samples/step_000000/p0_s2.png",
                                                               "pipe/r1/samples/step_000000/p1_s1.png", "pipe/r1/samples/step_000000/p1_s2.png"])
            #expect(all.keys.map { [$0.prompt, $0.seed] } == [[0, 1], [0, 2], [1, 1], [1, 2]])
            #expect(all.keys[0].text == RunsFixture.prompts[0])
            #expect(all.grids == ["pipe/compare/grid.png"])

            // A chosen step: a run that has not sampled it shows none.
            let at30 = try await compare(three + "&step=30")
            #expect(at30.pick == .step(30))
            #expect(at30.runs.map { Set($0.samples.map(\.step)) } == [[30], [30], []])
            // Each run's newest, and each run's best checkpoint's samples.
            let newest = try await compare(three + "&step=latest")
            #expect(newest.runs.map { Set($0.samples.map(\.step)) } == [[40], [40], [20]])
            let best = try await compare(three + "&step=best")
            #expect(best.pick == .best && best.runs.map { Set($0.samples.map(\.step)) } == [[20], [30], [20]])
            #expect(try await client.execute(uri: "/api/compare?\(three)&step=ten", method: .get).status == .badRequest)
            #expect(try await client.execute(uri: "/api/compare?\(three)&step=-1", method: .get).status == .badRequest)

            // No step-0 samples, no base column.
            try FileManager.default.removeItem(at: fixture.folder("beta").samples(step: 0))
            let noBase = try await compare("id=beta")
            #expect(noBase.base.isEmpty && noBase.pick == .step(20) && noBase.keys.count == 4)

            let loose = try await compare("id=alpha&id=beta")
            #expect(loose.grids.isEmpty)
            #expect(loose.base.map(\.run) == ["alpha"])
            #expect(try await client.execute(uri: "/api/compare", method: .get).status == .badRequest)
            #expect(try await client.execute(uri: "/api/compare?id=alpha&id=nope", method: .get).status == .notFound)
        }
    }

    @Test func pipelineSummaryComesFromItsSummaryJSON() async throws {
        try await withDashboard { fixture, client, _ async throws in
            let pipeline = try decode(PipelineDetail.self, try await client.execute(uri: "/api/pipeline?id=pipe", method: .get))
            #expect(pipeline.runs.map(\.id) == ["pipe/r1", "pipe/r2"])
            // The rows `inkwell pipeline` wrote, read back as the trainer's type; folders relative to the pipeline's.
            let results = pipeline.results.map(\.result)
            #expect(results == PipelineSummaryFile.read(in: fixture.url("pipe")))
            #expect(results.map(\.variant) == ["r1", "r2"] && results.map(\.folder) == ["r1", "r2"])
            #expect(results.map(\.bestStep) == [20, 30])
            #expect(results[1].bestValidationLoss == RunsFixture.valLoss(step: 30, bestAt: 30, offset: -0.003))
            #expect(results[0].steps == 40 && results[0].seconds == 12.5)
            // Links as paths under runs/.
            let root = try RunsRoot(fixture.root)
            #expect(pipeline.results.map(\.run) == ["pipe/r1", "pipe/r2"])
            #expect(pipeline.results.map(\.best) == ["pipe/r1", "pipe/r2"].map { root.relative(fixture.folder($0).best) })
            #expect(pipeline.results.map(\.final) == ["pipe/r1", "pipe/r2"].map { root.relative(fixture.folder($0).final) })
            #expect(pipeline.results.allSatisfy { $0.best != nil && $0.final != nil })
            #expect(try await client.execute(uri: "/api/pipeline?id=alpha", method: .get).status == .notFound)
        }
    }

    /// summary.json from before relative folders: absolute paths, one still there, one that moved with its pipeline.
    @Test func anOldSummaryWithAbsoluteFoldersStillLinks() async throws {
        try await withDashboard { fixture, client, _ async throws in
            var rows = try ["r1", "r2"].map { try PipelineRunResult(variant: $0, run: fixture.folder("pipe/\($0)")) }
            #expect(rows[0].folder == fixture.url("pipe/r1").path)
            rows[1].folder = "/mnt/old-disk/runs/pipe/r2"
            // What the writer wrote before: the rows as they are.
            try PipelineSummaryFile.encoded(rows).write(to: fixture.url("pipe/\(PipelineSummaryFile.fileName)"))
            let pipeline = try decode(PipelineDetail.self, try await client.execute(uri: "/api/pipeline?id=pipe", method: .get))
            #expect(pipeline.results.map(\.result.folder) == rows.map(\.folder))
            #expect(pipeline.results.map(\.run) == ["pipe/r1", "pipe/r2"])
            let root = try RunsRoot(fixture.root)
            #expect(pipeline.results.map(\.final) == ["pipe/r1", "pipe/r2"].map { root.relative(fixture.folder($0).final) })
        }
    }

    /// A pipeline whose runs sit beside its folder: its summary's folders ("../alpha") find them, whatever the variants are called.
    @Test func aSummaryLinksRunsOutsideItsFolder() async throws {
        try await withDashboard { fixture, client, _ async throws in
            let rows = try [("first", "alpha"), ("second", "beta")].map { try PipelineRunResult(variant: $0.0, run: fixture.folder($0.1)) }
            try PipelineSummaryFile.write(rows, name: "beside", to: fixture.url("beside"))
            let pipeline = try decode(PipelineDetail.self, try await client.execute(uri: "/api/pipeline?id=beside", method: .get))
            #expect(pipeline.results.map(\.result.folder) == ["../alpha", "../beta"])
            #expect(pipeline.results.map(\.run) == ["alpha", "beta"] && pipeline.summary.runs == ["alpha", "beta"])
            #expect(pipeline.results[0].final != nil && pipeline.results[1].final == nil)
        }
    }

    /// The relative summary keeps linking after runs/ is moved.
    @Test func aMovedRunsFolderKeepsItsPipelineLinks() async throws {
        let fixture = try RunsFixture.standard()
        defer { fixture.remove() }
        let moved = fixture.base.appendingPathComponent("moved/runs")
        try FileManager.default.createDirectory(at: moved.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.moveItem(at: fixture.root, to: moved)
        let pipeline = try await DashboardData(root: try RunsRoot(moved)).pipeline("pipe")
        #expect(pipeline.results.map(\.run) == ["pipe/r1", "pipe/r2"])
        #expect(pipeline.results.allSatisfy { $0.best?.hasPrefix("pipe/") == true && $0.final != nil })
    }

    @Test func badQueriesAre4xx() async throws {
        try await withDashboard { _, client, _ async throws in
            #expect(try await client.execute(uri: "/api/run", method: .get).status == .badRequest)
            #expect(try await client.execute(uri: "/api/run?id=nope", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/api/run?id=../alpha", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/api/log?id=alpha&since=ten", method: .get).status == .badRequest)
            #expect(try await client.execute(uri: "/api/nothing", method: .get).status == .notFound)
        }
    }

    @Test func pageAndAssetsAreSelfContained() async throws {
        try await withDashboard { _, client, _ async throws in
            let page = try await client.execute(uri: "/", method: .get)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            let csp = try #require(page.headers[.contentSecurityPolicy])
            #expect(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"))
            let html = String(buffer: page.body)
            #expect(html.contains("<script src=\"/assets/app.js\"></script>"))
            // The page's script is the files it loads, in order (app.js, last, starts it).
            var js = ""
            for source in html.matches(of: /<script src="([^"]+)"><\/script>/).map({ String($0.output.1) }) {
                let script = try await client.execute(uri: source, method: .get)
                #expect(script.headers[.contentType] == "text/javascript; charset=utf-8", "\(source)")
                js += String(buffer: script.body)
            }
            let css = try await client.execute(uri: "/assets/app.css", method: .get)
            #expect(css.headers[.contentType] == "text/css; charset=utf-8")
            // No URL to anywhere but the dashboard: the only absolute URL is the SVG namespace name.
            for text in [html, js, String(buffer: css.body)] {
                let urls = text.matches(of: /https?:\/\/[^\s'"`)]+/).map { String($0.output) }
                #expect(urls.allSatisfy { $0 == "http://www.w3.org/2000/svg" }, "external URLs: \(urls)")
                #expect(!text.contains("@import") && !text.contains("//cdn"))
            }
            #expect(js.contains("/api/log?id="))
        }
    }

    @Test func assetsRevalidate() async throws {
        try await withDashboard { _, client, _ async throws in
            for uri in ["/", "/assets/app.js", "/assets/app.css"] {
                let first = try await client.execute(uri: uri, method: .get)
                #expect(first.status == .ok && first.headers[.cacheControl] == "no-cache", "\(uri)")
                #expect(first.headers[.xContentTypeOptions] == "nosniff" && first.headers[.contentSecurityPolicy] != nil, "\(uri)")
                let tag = try #require(first.headers[.eTag], "\(uri)")
                let again = try await client.execute(uri: uri, method: .get, headers: [.ifNoneMatch: tag])
                #expect(again.status == .notModified && again.body.readableBytes == 0, "\(uri)")
            }
            #expect(try await client.execute(uri: "/assets/nothing.js", method: .get).status == .notFound)
        }
    }
}
