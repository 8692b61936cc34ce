// Line charts of training metrics: panels with a title, a legend above the plot area (never over the
// data), nice ticks with gridlines, axis labels with units, and one path per series. A NaN value
// breaks its line (the gap shows where training went non-finite); a point with no line on either
// side gets a dot so it stays visible. Panels without data say so.
import Foundation
import Imaging

public struct PlotPoint: Equatable, Sendable {
    public var x: Double
    /// NaN or ±inf: a gap in the line.
    public var y: Double
    public init(_ x: Double, _ y: Double) {
        self.x = x
        self.y = y
    }
}

public struct PlotSeries: Sendable {
    public var name: String
    public var points: [PlotPoint]
    public var color: Color
    public var lineWidth: Double
    /// A dot on every point (sparse series such as validation loss).
    public var markers: Bool
    public var inLegend: Bool

    public init(name: String, points: [PlotPoint], color: Color, lineWidth: Double = 1.5, markers: Bool = false,
                inLegend: Bool = true) {
        self.name = name
        self.points = points
        self.color = color
        self.lineWidth = lineWidth
        self.markers = markers
        self.inLegend = inLegend
    }

    /// Runs of consecutive finite points; non-finite values split them.
    public var segments: [[PlotPoint]] {
        var result: [[PlotPoint]] = [[]]
        for p in points {
            if p.x.isFinite && p.y.isFinite {
                result[result.count - 1].append(p)
            } else if !(result.last?.isEmpty ?? true) {
                result.append([])
            }
        }
        return result.filter { !$0.isEmpty }
    }

    public var finitePoints: [PlotPoint] { points.filter { $0.x.isFinite && $0.y.isFinite } }
}

public struct PlotPanel: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [PlotSeries]
    public var showsLegend: Bool
    /// Shown in the plot area when no series has a finite point.
    public var emptyNote = "no data"

    public init(title: String, xLabel: String = "step", yLabel: String, series: [PlotSeries], showsLegend: Bool = true) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.showsLegend = showsLegend
    }

    public var hasData: Bool { series.contains { !$0.finitePoints.isEmpty } }
}

/// Panels on a grid under an optional heading.
public struct PlotFigure: Sendable {
    public var title: String?
    public var panels: [PlotPanel]
    public var columns: Int
    public var panelWidth: Double = 520
    public var panelHeight: Double = 340

    public init(title: String? = nil, panels: [PlotPanel], columns: Int = 1) {
        self.title = title
        self.panels = panels
        self.columns = max(1, columns)
    }

    static let headingHeight = 34.0

    public func scene() -> VectorScene {
        let rows = (panels.count + columns - 1) / columns
        let top = title == nil ? 0 : Self.headingHeight
        var scene = VectorScene(width: panelWidth * Double(min(columns, max(1, panels.count))),
                                height: top + panelHeight * Double(max(1, rows)))
        if let title {
            scene.items.append(.text(title, at: Point(scene.width / 2, 24), style: .heading, anchor: .middle,
                                     color: ChartColors.text, vertical: false, centered: false, role: "figure-title"))
        }
        for (i, panel) in panels.enumerated() {
            let origin = Point(Double(i % columns) * panelWidth, top + Double(i / columns) * panelHeight)
            let layout = PanelLayout(panel: panel, origin: origin, width: panelWidth, height: panelHeight)
            scene.items.append(.group("panel", layout.items()))
        }
        return scene
    }

    public func svg() -> String { scene().svg() }
    public func image(scale: Int = 2) throws -> Image { try scene().rasterize(scale: scale) }
}

enum ChartColors {
    static let text = Color(hex: 0x222222)
    static let muted = Color(hex: 0x666666)
    static let frame = Color(hex: 0x8a8a8a)
    static let grid = Color(hex: 0xe4e4e4)
}

/// Where everything of one panel goes, in scene units.
public struct PanelLayout: Sendable {
    public let panel: PlotPanel
    public let plotLeft: Double, plotRight: Double, plotTop: Double, plotBottom: Double
    public let xAxis: PlotAxis
    public let yAxis: PlotAxis
    let origin: Point
    let width: Double
    let legendRows: [[(PlotSeries, Double)]]

    static let legendRowHeight = 16.0
    static let swatch = 18.0

    public init(panel: PlotPanel, origin: Point, width: Double, height: Double) {
        self.panel = panel
        self.origin = origin
        self.width = width
        let points = panel.series.flatMap(\.finitePoints)
        xAxis = PlotAxis(covering: points.map(\.x), targetTicks: 6, integers: true)
        yAxis = PlotAxis(covering: points.map(\.y), targetTicks: 6)
        let tickWidth = panel.hasData ? (yAxis.labels.map { TextStyle.tick.width($0) }.max() ?? 0) : 0
        let left = origin.x + 30 + tickWidth + 8
        let right = origin.x + width - 18
        // Legend entries flow left to right in rows as wide as the plot area.
        var rows: [[(PlotSeries, Double)]] = []
        if panel.showsLegend {
            var x = 0.0
            for series in panel.series where series.inLegend {
                let entry = Self.swatch + 5 + TextStyle.label.width(series.name) + 14
                if rows.isEmpty || (x + entry > right - left && x > 0) {
                    rows.append([])
                    x = 0
                }
                rows[rows.count - 1].append((series, x))
                x += entry
            }
        }
        legendRows = rows
        plotLeft = left
        plotRight = right
        plotTop = origin.y + 34 + Double(rows.count) * Self.legendRowHeight + (rows.isEmpty ? 0 : 6)
        plotBottom = origin.y + height - 44
    }

    /// Scene coordinates of a data point.
    public func position(_ p: PlotPoint) -> Point {
        Point(plotLeft + xAxis.fraction(p.x) * (plotRight - plotLeft), plotBottom - yAxis.fraction(p.y) * (plotBottom - plotTop))
    }

    func items() -> [VectorScene.Item] {
        var items: [VectorScene.Item] = []
        let midX = (plotLeft + plotRight) / 2, midY = (plotTop + plotBottom) / 2
        items.append(.text(panel.title, at: Point(origin.x + width / 2, origin.y + 22), style: .title, anchor: .middle,
                           color: ChartColors.text, vertical: false, centered: false, role: "title"))
        items.append(.text(panel.xLabel, at: Point(midX, plotBottom + 36), style: .label, anchor: .middle,
                           color: ChartColors.text, vertical: false, centered: false, role: "axis-label"))
        items.append(.text(panel.yLabel, at: Point(origin.x + 20, midY), style: .label, anchor: .middle,
                           color: ChartColors.text, vertical: true, centered: false, role: "axis-label"))
        guard panel.hasData else {
            items.append(.rect(x: plotLeft, y: plotTop, width: plotRight - plotLeft, height: plotBottom - plotTop,
                               fill: nil, stroke: ChartColors.frame))
            items.append(.text(panel.emptyNote, at: Point(midX, midY), style: .label, anchor: .middle,
                               color: ChartColors.muted, vertical: false, centered: true, role: "empty"))
            return items
        }
        items.append(.group("grid", gridlines()))
        items.append(.group("x-axis", xTicks()))
        items.append(.group("y-axis", yTicks()))
        items.append(.rect(x: plotLeft, y: plotTop, width: plotRight - plotLeft, height: plotBottom - plotTop,
                           fill: nil, stroke: ChartColors.frame))
        var lines: [VectorScene.Item] = [], dots: [VectorScene.Item] = []
        for series in panel.series {
            let segments = series.segments.map { $0.map(position) }
            let count = segments.reduce(0) { $0 + $1.count }
            guard count > 0 else { continue }
            lines.append(.path(subpaths: segments, color: series.color, width: series.lineWidth,
                               attributes: [("class", "series"), ("data-series", series.name), ("data-points", String(count))]))
            for segment in segments where series.markers || segment.count == 1 {
                for p in segment { dots.append(.dot(center: p, radius: max(2.2, series.lineWidth + 0.8), color: series.color)) }
            }
        }
        items.append(.group("series", lines + dots))
        if !legendRows.isEmpty { items.append(.group("legend", legend())) }
        return items
    }

    func gridlines() -> [VectorScene.Item] {
        var items: [VectorScene.Item] = []
        for tick in xAxis.ticks.dropFirst().dropLast() {
            let x = position(PlotPoint(tick, yAxis.lower)).x
            items.append(.line(from: Point(x, plotTop), to: Point(x, plotBottom), color: ChartColors.grid, width: 1, role: "grid"))
        }
        for tick in yAxis.ticks.dropFirst().dropLast() {
            let y = position(PlotPoint(xAxis.lower, tick)).y
            items.append(.line(from: Point(plotLeft, y), to: Point(plotRight, y), color: ChartColors.grid, width: 1, role: "grid"))
        }
        return items
    }

    func xTicks() -> [VectorScene.Item] {
        // Thin out labels that would touch: keep every k-th.
        let widest = xAxis.labels.map { TextStyle.tick.width($0) }.max() ?? 0
        let spacing = (plotRight - plotLeft) / Double(max(1, xAxis.ticks.count - 1))
        let every = max(1, Int((widest + 8) / max(spacing, 1)) + 1)
        var items: [VectorScene.Item] = []
        for (i, tick) in xAxis.ticks.enumerated() {
            let x = position(PlotPoint(tick, yAxis.lower)).x
            items.append(.line(from: Point(x, plotBottom), to: Point(x, plotBottom + 4), color: ChartColors.frame, width: 1, role: "tick"))
            if i % every == 0 {
                items.append(.text(xAxis.label(tick), at: Point(x, plotBottom + 17), style: .tick, anchor: .middle,
                                   color: ChartColors.muted, vertical: false, centered: false, role: "tick"))
            }
        }
        return items
    }

    func yTicks() -> [VectorScene.Item] {
        yAxis.ticks.flatMap { tick -> [VectorScene.Item] in
            let y = position(PlotPoint(xAxis.lower, tick)).y
            return [.line(from: Point(plotLeft - 4, y), to: Point(plotLeft, y), color: ChartColors.frame, width: 1, role: "tick"),
                    .text(yAxis.label(tick), at: Point(plotLeft - 7, y), style: .tick, anchor: .end,
                          color: ChartColors.muted, vertical: false, centered: true, role: "tick")]
        }
    }

    func legend() -> [VectorScene.Item] {
        var items: [VectorScene.Item] = []
        for (r, row) in legendRows.enumerated() {
            let y = origin.y + 40 + Double(r) * Self.legendRowHeight
            for (series, x) in row {
                let left = plotLeft + x
                items.append(.line(from: Point(left, y), to: Point(left + Self.swatch, y), color: series.color,
                                   width: max(2, series.lineWidth), role: "swatch"))
                if series.markers { items.append(.dot(center: Point(left + Self.swatch / 2, y), radius: 3, color: series.color)) }
                items.append(.text(series.name, at: Point(left + Self.swatch + 5, y), style: .label, anchor: .start,
                                   color: ChartColors.text, vertical: false, centered: true, role: "legend"))
            }
        }
        return items
    }
}
