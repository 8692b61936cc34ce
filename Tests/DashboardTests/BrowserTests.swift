// The page in a real browser (Debian's headless chromium) against a live server on 127.0.0.1 and a
// free port: it loads, lists the runs, draws the curves and shows the sample images, and while it is
// open it picks up a log row the trainer appends and a run that starts (no reload). A screenshot is
// kept under .build/test-artifacts/ for a person to look at.
import Foundation
import Hummingbird
import Imaging
import RunFiles
import ServiceLifecycle
import TestSupport
import Testing
@testable import Dashboard

/// Plays the trainer while the page is open: the first time the page polls beta's log for new rows,
/// a row is appended before the answer is read; the second time it asks for the runs index, a new
/// run "gamma" starts. Both happen only after the page has loaded, so seeing them in the DOM proves
/// the page updates itself.
final class LiveTrainer: @unchecked Sendable {
    let fixture: RunsFixture
    let appendedStep: Int
    private let lock = NSLock()
    private var indexPolls = 0
    private(set) var appended = false
    private(set) var started = false

    init(fixture: RunsFixture, appendedStep: Int) {
        self.fixture = fixture
        self.appendedStep = appendedStep
    }

    func saw(_ request: Request) throws {
        try lock.withLock {
            let query = request.uri.queryParameters
            if request.uri.path == "/api/log", query["id"] == "beta", let since = query["since"].flatMap({ Int($0) }),
               since >= 0, !appended {
                appended = true
                try fixture.append(RunsFixture.row(step: appendedStep, train: 0.1, smoothed: 0.1, val: 0.1005, lr: 4e-5),
                                   to: "beta")
            }
            if request.uri.path == "/api/index" {
                indexPolls += 1
                if indexPolls == 2 && !started {
                    started = true
                    try fixture.run("gamma", steps: 3, bestAt: 2, offset: 0.02, samplesEvery: 10)
                }
            }
        }
    }
}

struct LiveTrainerMiddleware<Context: RequestContext>: RouterMiddleware {
    let trainer: LiveTrainer
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try trainer.saw(request)
        return try await next(request, context)
    }
}

/// Runs `body` with the dashboard served on 127.0.0.1 at a free port, then shuts the server down
/// gracefully and waits (bounded) until it has stopped.
func withLiveServer(_ server: DashboardServer, router: Router<BasicRequestContext>,
                    _ body: (Int) async throws -> Void) async throws {
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let app = server.application(router: router) { port in continuation.yield(port) }
    let group = ServiceGroup(configuration: .init(services: [app], logger: app.logger))
    let serving = Task { try await group.run() }
    defer { serving.cancel() }
    // Bounded wait for the port: the server reports it once bound.
    let timeout = Task { try await Task.sleep(for: .seconds(30)); continuation.finish() }
    var port: Int?
    for await p in ports { port = p; break }
    timeout.cancel()
    guard let port, port > 0 else { throw Chromium.Failed(description: "the dashboard server did not start within 30 s") }
    try await body(port)
    await group.triggerGracefulShutdown()
    let stopped = await withTaskGroup(of: Bool.self) { tasks in
        tasks.addTask { _ = try? await serving.value; return true }
        tasks.addTask { try? await Task.sleep(for: .seconds(20)); return false }
        let first = await tasks.next() ?? false
        tasks.cancelAll()
        return first
    }
    guard stopped else { throw Chromium.Failed(description: "the dashboard server did not stop within 20 s") }
}

/// `text` contains `needle`; a failure names `what` and shows a little of the text, not all of it.
func expectContains(_ text: String, _ needle: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    if !text.contains(needle) {
        Issue.record("\(what): no `\(needle)` in the page (\(text.count) characters, starting: \(text.prefix(300)))",
                     sourceLocation: sourceLocation)
    }
}

@Suite(.serialized) struct BrowserTests {
    static let artifacts = Fixtures.packageRoot.appendingPathComponent(".build/test-artifacts")

    @Test func pageShowsRunsCurvesImagesAndUpdatesLive() async throws {
        let chromium = try Chromium()
        defer { chromium.cleanUp() }
        let fixture = try RunsFixture.standard()
        defer { fixture.remove() }
        let server = try DashboardServer(runs: fixture.root, host: "127.0.0.1", port: 0)
        let trainer = LiveTrainer(fixture: fixture, appendedStep: 26)
        let router = server.router { $0.add(middleware: LiveTrainerMiddleware(trainer: trainer)) }
        // beta's trainer reports in status.json (this process, this host, a fresh heartbeat): rate and ETA.
        try TrainerStatus(state: .running, step: 25, totalSteps: 40, stepsPerSecond: 1.5, etaSeconds: 10, elapsedSeconds: 17,
                          startedAt: Date().addingTimeInterval(-20)).write(fixture.folder("beta"))
        // pipe/r1's trainer was killed: its status still says running, but its process is gone.
        try TrainerStatus(state: .running, step: 38, totalSteps: 40, elapsedSeconds: 29, pid: try exitedProcessID(),
                          startedAt: Date().addingTimeInterval(-40), heartbeat: Date().addingTimeInterval(-9)).write(fixture.folder("pipe/r1"))
        // pipe/r2 failed; its final checkpoint is from before.
        try TrainerStatus(state: .failed(error: "CUDA error: an illegal memory access was encountered"), step: 40, totalSteps: 40,
                          elapsedSeconds: 30, startedAt: Date().addingTimeInterval(-60)).write(fixture.folder("pipe/r2"))

        try await withLiveServer(server, router: router) { port in
            let base = "http://127.0.0.1:\(port)/"
            let dom = try await chromium.dumpDOM(base + "#/run/beta", budget: 12_000)

            // The runs, in the sidebar.
            for id in ["alpha", "beta", "pipe/r1", "pipe/r2"] { expectContains(dom, "data-run=\"\(id)\"", "run \(id) listed") }
            // The curves, as SVG paths.
            for series in ["train_loss", "smoothed_loss", "val_loss", "clip_score", "lr"] {
                expectContains(dom, "data-series=\"\(series)\"", "\(series) curve")
            }
            // Sample images, as thumbnails of the run's own files, with their prompt text.
            expectContains(dom, "<img src=\"/thumb/beta/samples/step_000020/p0_s1.png?w=384\"", "latest samples")
            expectContains(dom, "/thumb/beta/samples/step_000000/p1_s2.png?w=160", "prompts × steps grid")
            expectContains(dom, RunsFixture.prompts[0], "prompt text")
            // The stencil toggle beside the samples' step controls, off until pressed.
            expectContains(dom, "<button class=\"stencil-toggle\" aria-pressed=\"false\"", "stencil toggle")
            expectContains(dom, "<td>captions</td><td><span>blip</span></td>", "config")
            // Its status from status.json, in the head and the sidebar; pipe/r2's failure in the sidebar.
            expectContains(dom, "data-status=\"training\"", "beta's status pill")
            expectContains(dom, "1.50 it/s · ETA 0:10", "beta's rate and ETA")
            expectContains(dom, "failed at step 40: CUDA error: an illegal memory access was encountered", "pipe/r2's error")
            expectContains(dom, "data-status=\"notResponding\" title=\"not responding since ", "pipe/r1 not responding")

            // Live: the row appended after the page loaded is drawn (it is also the new lowest val loss,
            // so the best-step marker moves to it), and the run started meanwhile is listed.
            #expect(trainer.appended && trainer.started)
            expectContains(dom, "data-series=\"val_loss\" data-points=\"4\" data-last-step=\"26\"", "appended val-loss point")
            expectContains(dom, "data-marker=\"best 26\"", "best step moved to the appended row")
            expectContains(dom, "data-run=\"gamma\"", "run started while the page was open")

            // A fresh load after another row: the new point is there too, and the best stays at 26.
            try fixture.append(RunsFixture.row(step: 27, train: 0.1, smoothed: 0.1, val: 0.1008, lr: 3e-5), to: "beta")
            let second = try await chromium.dumpDOM(base + "#/run/beta", budget: 4_000)
            expectContains(second, "data-series=\"val_loss\" data-points=\"5\" data-last-step=\"27\"", "second load's new point")
            expectContains(second, "data-marker=\"best 26\"", "best step on the second load")

            // A finished run: the best step from state/trainer.json is marked on its curves and samples.
            let alpha = try await chromium.dumpDOM(base + "#/run/alpha", budget: 4_000)
            expectContains(alpha, "data-marker=\"best 20\"", "alpha's best step (from the trainer's state)")
            expectContains(alpha, "<th class=\"best\">★ 20</th>", "best column of the prompts × steps grid")

            // The compare page overlays each run's val loss and shows their samples side by side.
            let compare = try await chromium.dumpDOM(base + "#/compare?run=pipe%2Fr1&run=pipe%2Fr2", budget: 4_000)
            expectContains(compare, "data-series=\"val_loss:pipe/r1\"", "r1's val-loss curve")
            expectContains(compare, "data-series=\"val_loss:pipe/r2\"", "r2's val-loss curve")
            expectContains(compare, "/thumb/pipe/r1/samples/step_000040/p1_s2.png?w=256", "r1's newest sample")
            expectContains(compare, "/thumb/pipe/r2/samples/step_000040/p1_s2.png?w=256", "r2's newest sample")
            expectContains(compare, "/thumb/pipe/r1/samples/step_000000/p1_s2.png?w=256", "the base model's column (step 0)")
            expectContains(compare, "data-pick=\"40\"", "the step picker, at the newest common step")
            let picked = try await chromium.dumpDOM(base + "#/compare?run=pipe%2Fr1&run=pipe%2Fr2&step=best", budget: 4_000)
            expectContains(picked, "/thumb/pipe/r1/samples/step_000020/p1_s2.png?w=256", "r1's best step's sample")
            expectContains(picked, "/thumb/pipe/r2/samples/step_000030/p1_s2.png?w=256", "r2's best step's sample")
            expectContains(compare, "src=\"/files/pipe/compare/grid.png\"", "the pipeline's grid")

            // The pipeline page shows its summary.json as a table, each run linked, the lowest best val loss bold.
            let pipeline = try await chromium.dumpDOM(base + "#/pipeline/pipe", budget: 4_000)
            expectContains(pipeline, "<h1>pipe</h1>", "pipeline heading")
            expectContains(pipeline, "2 runs", "run count")
            expectContains(pipeline, "<td><a href=\"#/run/pipe/r1\">r1</a></td><td>20</td>", "summary's run link and best step")
            expectContains(pipeline, "<strong>\(RunsFixture.valLossText(step: 30, bestAt: 30, offset: -0.003))</strong>", "lowest best val loss")
            expectContains(pipeline, "src=\"/files/pipe/plots/val_loss.svg?v=", "plots (with a version that changes when they are redrawn)")

            // Screenshots for people: the run page (the artifact the issue asks for), compare, pipeline.
            let shot = Self.artifacts.appendingPathComponent("dashboard.png")
            try await chromium.screenshot(base + "#/run/pipe/r2", to: shot, height: 2200)
            let image = try Image.load(shot)
            #expect(image.width == 1280 && image.height == 2200)
            // Not a blank page: the page has dark text and the light paper background.
            let gray = try image.gray().pixels
            #expect(gray.filter { $0 < 80 }.count > 5_000 && gray.filter { $0 > 230 }.count > gray.count / 3)
            try await chromium.screenshot(base + "#/compare?run=pipe%2Fr1&run=pipe%2Fr2&run=beta",
                                          to: Self.artifacts.appendingPathComponent("dashboard-compare.png"), height: 2000)
            try await chromium.screenshot(base + "#/pipeline/pipe", to: Self.artifacts.appendingPathComponent("dashboard-pipeline.png"))
            try await chromium.screenshot(base + "#/", to: Self.artifacts.appendingPathComponent("dashboard-overview.png"), height: 1100)
        }
    }
}
