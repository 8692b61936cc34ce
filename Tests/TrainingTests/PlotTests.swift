// `inkwell plot`: the SVG is well-formed XML with one path per series and the right number of points,
// ticks cover the data and map it to the coordinates it is drawn at, missing and NaN cells are
// handled, the PNG is written and shows the curves, and the same logs give the same bytes.
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Imaging
import RunFiles
import Testing
import TestSupport
@testable import Training

/// Writes `<root>/<name>/log.csv` with the given rows.
func writeRunLog(_ root: URL, name: String, rows: [TrainingLogRow]) throws -> URL {
    let run = root.appendingPathComponent(name)
    let log = try TrainingLog(url: RunFolder(run).log)
    for row in rows { try log.append(row) }
    return run
}

/// A descending run: steps 0, 10, … 100; train loss 1 − 0.008·step with NaN at step 60; smoothed loss
/// 0.9 − 0.006·step; validation loss at 0, 50, 100; no CLIP score; lr warming up to 1e-4 by step 20.
func descendingRows() -> [TrainingLogRow] {
    stride(from: 0, through: 100, by: 10).map { (step: Int) -> TrainingLogRow in
        let s = Double(step)
        let train: Double = step == 60 ? .nan : 1 - 0.008 * s
        let validation: Double? = step % 50 == 0 ? 0.8 - 0.004 * s : nil
        let lr: Double = min(1, s / 20) * 1e-4
        return TrainingLogRow(step: step, epoch: step / 50, trainLoss: train, smoothedLoss: 0.9 - 0.006 * s,
                              validationLoss: validation, learningRate: lr)
    }
}

/// The parsed SVG and helpers to walk it (SVG has a default namespace, so no XPath: a plain walk).
struct SVGTree {
    let root: XMLElement

    init(_ url: URL) throws {
        let document = try XMLDocument(data: Data(contentsOf: url))
        root = try #require(document.rootElement())
    }

    static func descendants(_ e: XMLElement) -> [XMLElement] {
        (e.children ?? []).compactMap { $0 as? XMLElement }.flatMap { [$0] + descendants($0) }
    }

    static func name(_ e: XMLElement) -> String { e.localName ?? e.name ?? "" }
    /// By scanning `attributes`: swift-corelibs-foundation's `attribute(forName:)` finds nothing on an
    /// element in a default namespace, as every SVG element is.
    static func attribute(_ e: XMLElement, _ key: String) -> String? {
        e.attributes?.first { ($0.localName ?? $0.name) == key }?.stringValue
    }
    static func number(_ e: XMLElement, _ key: String) -> Double? { attribute(e, key).flatMap(Double.init) }

    static func elements(_ e: XMLElement, _ name: String, class role: String? = nil) -> [XMLElement] {
        descendants(e).filter { Self.name($0) == name && (role == nil || attribute($0, "class") == role) }
    }

    static func texts(_ e: XMLElement, class role: String) -> [String] {
        elements(e, "text", class: role).map { $0.stringValue ?? "" }
    }

    var panels: [XMLElement] { Self.elements(root, "g", class: "panel") }

    /// (label value, position) of the tick labels of a panel's "x-axis" or "y-axis" group.
    static func ticks(_ panel: XMLElement, axis: String) throws -> [(value: Double, at: Double)] {
        let group = try #require(elements(panel, "g", class: axis).first)
        return try elements(group, "text", class: "tick").map { text in
            let value = try #require(Double(text.stringValue ?? ""), "tick label '\(text.stringValue ?? "")'")
            return (value, try #require(number(text, axis == "x-axis" ? "x" : "y")))
        }
    }

    /// The subpaths of a path's `d`: "Mx,y Lx,y … Mx,y …".
    static func subpaths(_ path: XMLElement) -> [[Point]] {
        let d = attribute(path, "d") ?? ""
        return d.split(separator: "M").map { part in
            part.split(separator: "L").compactMap { pair -> Point? in
                let xy = pair.trimmingCharacters(in: .whitespaces).split(separator: ",").compactMap { Double($0) }
                return xy.count == 2 ? Point(xy[0], xy[1]) : nil
            }
        }.filter { !$0.isEmpty }
    }
}

/// The linear map through the first and last tick, evaluated at `value`.
func mapped(_ value: Double, _ ticks: [(value: Double, at: Double)]) throws -> Double {
    let a = try #require(ticks.first), b = try #require(ticks.last)
    return a.at + (value - a.value) / (b.value - a.value) * (b.at - a.at)
}

@Suite struct PlotTests {
    @Test func axesUseNiceStepsThatCoverTheData() {
        let loss = PlotAxis(covering: [0.031, 0.187, .nan])
        #expect(loss.lower <= 0.031 && loss.upper >= 0.187)
        #expect(loss.ticks == [0, 0.05, 0.1, 0.15, 0.2])
        #expect(loss.labels == ["0.00", "0.05", "0.10", "0.15", "0.20"])

        let lr = PlotAxis(covering: [0, 2.5e-5, 1e-4])
        #expect(lr.labels == ["0", "2e-5", "4e-5", "6e-5", "8e-5", "1e-4"])
        #expect(PlotAxis(covering: [1.5e-4, 3e-4]).labels == ["1.5e-4", "2e-4", "2.5e-4", "3e-4"])

        let steps = PlotAxis(covering: [0, 1000, 2500], integers: true)
        #expect(steps.ticks == [0, 500, 1000, 1500, 2000, 2500])
        #expect(steps.labels.last == "2500")

        // One point, one step: a range around it, integer ticks on the step axis.
        #expect(PlotAxis(covering: [100], integers: true).ticks == [99, 100, 101])
        let one = PlotAxis(covering: [0.5])
        #expect(one.lower < 0.5 && one.upper > 0.5 && one.ticks.count >= 3)
        #expect(PlotAxis(covering: []).ticks == [0, 0.2, 0.4, 0.6, 0.8, 1])
        #expect(PlotAxis(covering: [31.2, 33.9]).labels.allSatisfy { !$0.contains("e") })
    }

    @Test func runFigureHasOnePathPerSeriesWithTheRightPoints() throws {
        let dir = try temporaryDirectory()
        let run = try writeRunLog(dir, name: "descending", rows: descendingRows())
        let files = try TrainingPlots.write(try RunLog.load([run]), to: dir.appendingPathComponent("plots"))
        let stems = ["run_descending", "overlay_train_loss", "overlay_val_loss", "overlay_clip_score", "overlay_lr"]
        let expectedNames: [String] = stems.flatMap { (stem: String) -> [String] in [stem + ".svg", stem + ".png"] }
        let names: [String] = files.map(\.lastPathComponent)
        #expect(names == expectedNames)
        let svg = try SVGTree(dir.appendingPathComponent("plots/run_descending.svg"))
        #expect(SVGTree.name(svg.root) == "svg")
        let panels = svg.panels
        try #require(panels.count == 4)
        let titles: [String] = panels.map { SVGTree.texts($0, class: "title").first ?? "" }
        #expect(titles == ["Training loss", "Validation loss", "CLIP score", "Learning rate"])
        let axisLabels: [[String]] = panels.map { SVGTree.texts($0, class: "axis-label") }
        #expect(axisLabels[0] == ["step", "MSE loss"])
        #expect(axisLabels[2] == ["step", "CLIP score (100·cos)"])
        #expect(axisLabels[3] == ["step", "learning rate"])

        // Training loss: raw (10 finite of 11, split by the NaN at step 60) and smoothed (11).
        let loss = SVGTree.elements(panels[0], "path", class: "series")
        #expect(loss.map { SVGTree.attribute($0, "data-series") ?? "" } == ["train loss (raw)", "smoothed (EMA)"])
        #expect(loss.map { SVGTree.attribute($0, "data-points") ?? "" } == ["10", "11"])
        try #require(loss.count == 2)
        #expect(SVGTree.subpaths(loss[0]).map(\.count) == [6, 4])
        #expect(SVGTree.subpaths(loss[1]).map(\.count) == [11])
        #expect(SVGTree.texts(panels[0], class: "legend") == ["train loss (raw)", "smoothed (EMA)"])

        // Validation loss: three points, each with a dot.
        let validation = SVGTree.elements(panels[1], "path", class: "series")
        try #require(validation.count == 1)
        #expect(SVGTree.subpaths(validation[0]).flatMap { $0 }.count == 3)
        #expect(SVGTree.elements(panels[1], "circle").count == 3)

        // No CLIP score in the log: no path, a "no data" note.
        #expect(SVGTree.elements(panels[2], "path", class: "series").isEmpty)
        #expect(SVGTree.texts(panels[2], class: "empty") == ["no data"])

        // Learning rate: scientific tick labels up to 1e-4.
        let lrAxis = try #require(SVGTree.elements(panels[3], "g", class: "y-axis").first)
        let lrLabels = SVGTree.texts(lrAxis, class: "tick")
        #expect(lrLabels.contains("1e-4") && lrLabels.contains("0"))
    }

    @Test func plottedPointsSitWhereTheTicksSayTheirValuesAre() throws {
        let dir = try temporaryDirectory()
        let run = try writeRunLog(dir, name: "descending", rows: descendingRows())
        try TrainingPlots.write(try RunLog.load([run]), to: dir, pngScale: nil)
        let panel = try #require(try SVGTree(dir.appendingPathComponent("run_descending.svg")).panels.first)
        let xTicks = try SVGTree.ticks(panel, axis: "x-axis"), yTicks = try SVGTree.ticks(panel, axis: "y-axis")
        // Ticks cover the data: steps 0…100, losses 0.2…1.0.
        let xValues = xTicks.map(\.value), yValues = yTicks.map(\.value)
        #expect((xValues.min() ?? 1) <= 0 && (xValues.max() ?? 0) >= 100)
        #expect((yValues.min() ?? 1) <= 0.2 && (yValues.max() ?? 0) >= 1.0)
        #expect(zip(yTicks, yTicks.dropFirst()).allSatisfy { $0.at > $1.at }, "larger values are higher up")

        let raw = try #require(SVGTree.elements(panel, "path", class: "series").first)
        let points = SVGTree.subpaths(raw).flatMap { $0 }
        let steps = [0, 10, 20, 30, 40, 50, 70, 80, 90, 100]
        #expect(points.count == steps.count)
        for (point, step) in zip(points, steps) {
            let loss = 1 - 0.008 * Double(step)
            let x = try mapped(Double(step), xTicks), y = try mapped(loss, yTicks)
            #expect(abs(point.x - x) < 0.02, "x of step \(step): \(point.x) vs \(x)")
            #expect(abs(point.y - y) < 0.02, "y of loss \(loss): \(point.y) vs \(y)")
        }
    }

    @Test func overlayHasALinePerRunNamedInTheLegend() throws {
        let dir = try temporaryDirectory()
        let a = try writeRunLog(dir, name: "blip", rows: descendingRows())
        let b = try writeRunLog(dir, name: "vanilla", rows: descendingRows().map { (row: TrainingLogRow) -> TrainingLogRow in
            var r = row
            r.smoothedLoss = r.smoothedLoss.map { $0 + 0.05 }
            r.clipScore = row.step % 50 == 0 ? 30 + Double(row.step) / 50 : nil
            return r
        })
        try TrainingPlots.write(try RunLog.load([a, b]), to: dir.appendingPathComponent("plots"), pngScale: nil)
        let train = try SVGTree(dir.appendingPathComponent("plots/overlay_train_loss.svg"))
        let paths = SVGTree.elements(train.root, "path", class: "series")
        #expect(paths.map { SVGTree.attribute($0, "data-series") ?? "" } == ["blip", "vanilla"])
        #expect(paths.map { SVGTree.attribute($0, "data-points") ?? "" } == ["11", "11"])
        #expect(Set(paths.compactMap { SVGTree.attribute($0, "stroke") }).count == 2, "runs get distinct colours")
        #expect(SVGTree.texts(train.root, class: "legend") == ["blip", "vanilla"])
        // CLIP score: only the run that has it gets a line.
        let clip = try SVGTree(dir.appendingPathComponent("plots/overlay_clip_score.svg"))
        #expect(SVGTree.elements(clip.root, "path", class: "series").map { SVGTree.attribute($0, "data-series") ?? "" } == ["vanilla"])
        // A folder of runs stands for the runs in it, in name order.
        #expect(try RunLog.load([dir]).map(\.name) == ["blip", "vanilla"])
    }

    @Test func singlePointsEmptyLogsAndNaNOnlyColumnsStillPlot() throws {
        let dir = try temporaryDirectory()
        let single = try writeRunLog(dir, name: "single", rows: [TrainingLogRow(step: 0, epoch: 0, trainLoss: 0.12,
                                                                                validationLoss: 0.1, learningRate: 0)])
        let empty = try writeRunLog(dir, name: "empty", rows: [])
        let nanRows = (1...3).map { TrainingLogRow(step: $0, epoch: 0, trainLoss: .nan, learningRate: 1e-4) }
        let nan = try writeRunLog(dir, name: "nan", rows: nanRows)
        try TrainingPlots.write(try RunLog.load([single, empty, nan]), to: dir.appendingPathComponent("plots"))

        let one = try SVGTree(dir.appendingPathComponent("plots/run_single.svg")).panels
        let raw = try #require(SVGTree.elements(one[0], "path", class: "series").first)
        #expect(SVGTree.attribute(raw, "data-points") == "1")
        #expect(SVGTree.elements(one[0], "circle").count == 1, "a lone point gets a dot")
        let x = try SVGTree.ticks(one[0], axis: "x-axis").map(\.value)
        #expect((x.min() ?? 0) < 0 && (x.max() ?? 0) > 0)

        let none = try SVGTree(dir.appendingPathComponent("plots/run_empty.svg")).panels
        #expect(none.map { SVGTree.texts($0, class: "empty").count } == [1, 1, 1, 1])
        let allNaN = try SVGTree(dir.appendingPathComponent("plots/run_nan.svg")).panels
        #expect(SVGTree.texts(allNaN[0], class: "empty").count == 1)
        #expect(SVGTree.elements(allNaN[3], "path", class: "series").count == 1)
    }

    @Test func pngShowsTheCurvesAndOutputIsDeterministic() throws {
        let dir = try temporaryDirectory()
        let run = try writeRunLog(dir, name: "descending", rows: descendingRows())
        let logs = try RunLog.load([run])
        let first = try TrainingPlots.write(logs, to: dir.appendingPathComponent("one"))
        let second = try TrainingPlots.write(logs, to: dir.appendingPathComponent("two"))
        for (a, b) in zip(first, second) {
            #expect(try Data(contentsOf: a) == Data(contentsOf: b), "\(a.lastPathComponent) differs between runs")
        }
        // Rewriting the same plots leaves the files alone (same modification times).
        func dates(_ urls: [URL]) throws -> [Date?] {
            try urls.map { try FileManager.default.attributesOfItem(atPath: $0.path)[.modificationDate] as? Date }
        }
        let before = try dates(first)
        Thread.sleep(forTimeInterval: 0.02)
        #expect(try dates(try TrainingPlots.write(logs, to: dir.appendingPathComponent("one"))) == before)
        let image = try Image.load(dir.appendingPathComponent("one/run_descending.png"))
        let scene = TrainingPlots.runFigure(logs[0]).scene()
        #expect(image.width == Int(scene.width) * 2 && image.height == Int(scene.height) * 2)
        var inked = 0, curve = 0
        let colour = TrainingPlots.palette[0]
        let rgb = image.channels == 3 ? image.pixels : try image.rgb().pixels
        for i in stride(from: 0, to: rgb.count, by: 3) {
            if rgb[i] != 255 || rgb[i + 1] != 255 || rgb[i + 2] != 255 { inked += 1 }
            if rgb[i] == colour.r && rgb[i + 1] == colour.g && rgb[i + 2] == colour.b { curve += 1 }
        }
        #expect(inked > image.width * image.height / 50, "the PNG is nearly blank: \(inked) inked pixels")
        #expect(curve > 500, "the smoothed curve's colour covers \(curve) pixels")
    }

    @Test func aMissingLogIsAnErrorNamingTheFile() throws {
        let dir = try temporaryDirectory()
        let run = dir.appendingPathComponent("not-a-run")
        try FileManager.default.createDirectory(at: run.appendingPathComponent("sub"), withIntermediateDirectories: true)
        let missing = #expect(throws: ReportError.self) { try RunLog(directory: run) }
        #expect(missing?.description.contains(run.appendingPathComponent("log.csv").path) == true)
        let noRuns = #expect(throws: ReportError.self) { try RunLog.load([run]) }
        #expect(noRuns?.description.contains(run.path) == true)
        let absent = #expect(throws: ReportError.self) { try RunLog.load([dir.appendingPathComponent("absent")]) }
        #expect(absent?.description.contains("absent") == true)
    }
}
