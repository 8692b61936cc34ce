// The comparison grid image: a header band naming each column (run, checkpoint, scale), a label
// column naming each row (prompt, wrapped and cut to fit, and seed), and the generated images on a
// white ground with thin gaps. Labels scale with the cells so they stay readable at 512 px and fit at 64.
import Foundation
import Imaging

public struct CompareGridLayout: Codable, Equatable, Sendable {
    public let cellWidth: Int
    public let cellHeight: Int
    public let columns: Int
    public let rows: Int
    /// Bitmap-font scale of the labels.
    public let textScale: Int
    /// Space between the cells and around the grid.
    public let gap: Int
    /// Inner margin of the labels.
    public let padding: Int
    /// Width of the row-label column on the left.
    public let labelWidth: Int
    /// Height of the column-header band on top.
    public let headerHeight: Int

    /// Characters per line of a row label.
    static let labelCharacters = 24
    /// Lines of a column header.
    static let headerLines = 3

    public init(cellWidth: Int, cellHeight: Int, columns: Int, rows: Int) {
        self.cellWidth = cellWidth
        self.cellHeight = cellHeight
        self.columns = columns
        self.rows = rows
        // 1 up to 223 px, 2 at 256, 3 at 512: labels about as tall relative to the cells at any size.
        textScale = max(1, (min(cellWidth, cellHeight) + 64) / 160)
        gap = 2 * textScale
        padding = 4 * textScale
        labelWidth = 2 * padding + BitmapFont.width(of: String(repeating: "m", count: Self.labelCharacters), scale: textScale)
        headerHeight = 2 * padding + Self.headerLines * BitmapFont.lineHeight * textScale
    }

    public var width: Int { labelWidth + gap + columns * (cellWidth + gap) }
    public var height: Int { headerHeight + gap + rows * (cellHeight + gap) }

    /// Top-left pixel of a cell's image.
    public func cellOrigin(row: Int, column: Int) -> (x: Int, y: Int) {
        (labelWidth + gap + column * (cellWidth + gap), headerHeight + gap + row * (cellHeight + gap))
    }
}

public enum ComparisonGrid {
    static let ink = Color(hex: 0x1e1e1e)
    static let muted = Color(hex: 0x6a6a6a)
    static let band = Color(hex: 0xf2f2f2)
    static let rule = Color(hex: 0xc8c8c8)

    /// Draws the grid: `images[row][column]`, each `layout.cellWidth`×`layout.cellHeight`.
    public static func render(images: [[Image]], columns: [CompareColumn], rows: [CompareRow],
                              layout: CompareGridLayout) throws -> Image {
        guard images.count == rows.count, images.allSatisfy({ $0.count == columns.count }) else {
            throw ReportError("grid: \(images.count) image rows for \(rows.count) rows of \(columns.count) columns")
        }
        var canvas = try Canvas(width: layout.width, height: layout.height, background: band)
        let s = layout.textScale, line = BitmapFont.lineHeight * s
        // The gaps show as grey rules, so white line-art cells stay apart.
        canvas.fill(x: layout.labelWidth, y: layout.headerHeight, width: layout.width - layout.labelWidth,
                    height: layout.height - layout.headerHeight, rule)

        for (c, column) in columns.enumerated() {
            let x = layout.cellOrigin(row: 0, column: c).x
            let inner = layout.cellWidth - 2 * layout.padding
            var lines = BitmapFont.wrap(column.title, maxWidth: inner, scale: s, maxLines: CompareGridLayout.headerLines - 1)
            let titleCount = lines.count
            lines.append(BitmapFont.truncate(column.detail, maxWidth: inner, scale: s))
            // Bottom-aligned, so headers of one and two title lines end on the same line.
            var y = layout.headerHeight - layout.padding - lines.count * line + s
            for (i, text) in lines.enumerated() {
                let width = BitmapFont.width(of: text, scale: s)
                canvas.drawText(text, x: x + (layout.cellWidth - width) / 2, y: y, scale: s, i < titleCount ? ink : muted,
                                bold: i < titleCount)
                y += line
            }
        }

        let maxLines = max(2, (layout.cellHeight - 2 * layout.padding) / line)
        for (r, row) in rows.enumerated() {
            let y0 = layout.cellOrigin(row: r, column: 0).y
            let inner = layout.labelWidth - 2 * layout.padding
            var y = y0 + layout.padding
            for text in BitmapFont.wrap(row.prompt, maxWidth: inner, scale: s, maxLines: maxLines - 1) {
                canvas.drawText(text, x: layout.padding, y: y, scale: s, ink)
                y += line
            }
            canvas.drawText(BitmapFont.truncate("seed \(row.seed)", maxWidth: inner, scale: s), x: layout.padding, y: y,
                            scale: s, muted)
            for (c, image) in images[r].enumerated() {
                guard image.width == layout.cellWidth, image.height == layout.cellHeight else {
                    throw ReportError("grid: the image of row \(r), column \(c) is \(image.width)×\(image.height), "
                                      + "not \(layout.cellWidth)×\(layout.cellHeight)")
                }
                let origin = layout.cellOrigin(row: r, column: c)
                try canvas.paste(image, x: origin.x, y: origin.y)
            }
        }
        return canvas.image
    }
}
