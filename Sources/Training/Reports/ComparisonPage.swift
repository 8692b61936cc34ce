// The comparison's two descriptions besides the grid: compare.json (every setting, column and cell,
// with the cell's file, key and place in the grid) for tools, and index.html (a table of the cell
// images, each linking to its full-size PNG) for people. Neither holds a date: same inputs, same bytes.
import Foundation
import StableDiffusion

public struct ComparisonManifest: Codable, Equatable, Sendable {
    public struct Cell: Codable, Equatable, Sendable {
        public var row: Int
        public var column: Int
        /// Relative to the output folder.
        public var file: String
        public var key: String
        /// The image's top-left corner in grid.png.
        public var x: Int
        public var y: Int
    }

    public struct Grid: Codable, Equatable, Sendable {
        public var file: String
        public var width: Int
        public var height: Int
        public var layout: CompareGridLayout
    }

    public var model: String
    public var modelName: String
    public var settings: CompareSettings
    public var columns: [CompareColumn]
    public var rows: [CompareRow]
    public var cells: [Cell]
    public var grid: Grid

    init(comparison: Comparison, rows: [CompareRow], keys: [[String]]) {
        let layout = comparison.layout
        model = comparison.model.url.path
        modelName = comparison.model.displayName
        settings = comparison.settings
        columns = comparison.columns
        self.rows = rows
        cells = rows.enumerated().flatMap { r, row in
            comparison.columns.enumerated().map { c, column in
                let origin = layout.cellOrigin(row: r, column: c)
                return Cell(row: r, column: c, file: comparison.cellPath(row: row, column: column), key: keys[r][c],
                            x: origin.x, y: origin.y)
            }
        }
        grid = Grid(file: comparison.gridURL.lastPathComponent, width: layout.width, height: layout.height, layout: layout)
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    public static func read(_ url: URL) throws -> ComparisonManifest {
        do {
            return try JSONDecoder().decode(ComparisonManifest.self, from: Data(contentsOf: url))
        } catch {
            throw ReportError("\(url.path): not a compare.json written by `inkwell compare` (\(error))")
        }
    }
}

enum ComparisonPage {
    static func html(_ m: ComparisonManifest) -> String {
        func e(_ text: String) -> String { VectorScene.escape(text) }
        let s = m.settings
        let thumb = min(s.size, 256)
        var out = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>Inkwell comparison: \(e(m.modelName))</title>
        <style>
        body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
        table { border-collapse: collapse; }
        th, td { border: 1px solid #ddd; padding: 4px; vertical-align: top; }
        thead th { background: #f2f2f2; font-weight: 600; text-align: center; }
        tbody th { background: #f2f2f2; font-weight: normal; text-align: left; max-width: 16em; }
        .detail, .seed { color: #666; font-size: 0.9em; }
        img { display: block; margin: 0 auto; }
        dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
        dt { color: #666; }
        </style>
        </head>
        <body>
        <h1>Base model vs LoRA runs</h1>
        <dl>
        <dt>model</dt><dd>\(e(m.model))</dd>
        <dt>sampler</dt><dd>\(e(s.sampler)), \(s.steps) steps, CFG \(e(GenerationInfo.number(s.guidance))), \(s.size)×\(s.size)</dd>
        <dt>negative prompt</dt><dd>\(e(s.negativePrompt.isEmpty ? "(none)" : s.negativePrompt))</dd>
        <dt>files</dt><dd><a href="\(e(m.grid.file))">\(e(m.grid.file))</a> (the whole grid), <a href="compare.json">compare.json</a></dd>
        </dl>
        <table>
        <thead>
        <tr><th></th>
        """
        for column in m.columns {
            out += "<th>\(e(column.title))<br><span class=\"detail\">\(e(column.detail))</span></th>"
        }
        out += "</tr>\n</thead>\n<tbody>\n"
        for (r, row) in m.rows.enumerated() {
            out += "<tr><th>\(e(row.prompt))<br><span class=\"seed\">seed \(row.seed)</span></th>"
            for cell in m.cells where cell.row == r {
                let column = m.columns[cell.column]
                let alt = "\(column.title) \(column.detail): \(row.prompt), seed \(row.seed)"
                out += "<td><a href=\"\(e(cell.file))\"><img src=\"\(e(cell.file))\" width=\"\(thumb)\" height=\"\(thumb)\" "
                    + "alt=\"\(e(alt))\" loading=\"lazy\"></a></td>"
            }
            out += "</tr>\n"
        }
        out += "</tbody>\n</table>\n</body>\n</html>\n"
        return out
    }
}
