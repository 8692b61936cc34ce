// A 5×7 bitmap font for labels on plots and comparison grids, drawn without any font library: every
// printable ASCII character plus the few symbols Inkwell's labels use (·, ×, …, −). Each glyph is a
// 5-pixel-wide cell of 9 rows: rows 0–6 stand on the baseline, rows 7–8 hold descenders (g, j, p, q,
// y, comma, underscore). Text scales by whole factors, so it stays crisp at any size.
import Foundation

public enum BitmapFont {
    /// Columns of ink per glyph.
    public static let glyphWidth = 5
    /// Rows per glyph, descenders included.
    public static let glyphHeight = 9
    /// Rows above the baseline (cap height).
    public static let ascent = 7
    /// Horizontal distance from one glyph to the next at scale 1 (one blank column between glyphs).
    public static let advance = 6
    /// Vertical distance from one line to the next at scale 1.
    public static let lineHeight = 10

    /// The rows of a character's glyph, bit 4 the leftmost column. Characters outside the table are
    /// tried without their accents (é → e), then drawn as a hollow box.
    public static func glyph(_ character: Character) -> [UInt8] {
        if let rows = glyphs[character] { return rows }
        let folded = String(character).folding(options: [.diacriticInsensitive, .widthInsensitive], locale: nil)
        if folded.count == 1, let first = folded.first, let rows = glyphs[first] { return rows }
        return missing
    }

    /// True when the table has a glyph of its own for the character.
    public static func hasGlyph(_ character: Character) -> Bool { glyphs[character] != nil }

    /// Width in pixels of one line of text (no trailing blank column).
    public static func width(of text: String, scale: Int = 1) -> Int {
        text.isEmpty ? 0 : (text.count * advance - 1) * scale
    }

    /// Greedy word wrap into lines at most `maxWidth` pixels wide, at most `maxLines` of them; a word
    /// longer than a line is cut, and text that does not fit ends its last line with "…".
    public static func wrap(_ text: String, maxWidth: Int, scale: Int = 1, maxLines: Int = .max) -> [String] {
        let perLine = max(1, (maxWidth / scale + 1) / advance)
        guard maxLines > 0 else { return [] }
        var lines: [String] = []
        var current = ""
        var words = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
        var truncated = false
        while !words.isEmpty {
            var word = words.removeFirst()
            let candidate = current.isEmpty ? word : current + " " + word
            if candidate.count <= perLine {
                current = candidate
                continue
            }
            if current.isEmpty {
                // A word longer than a whole line: cut it and carry the rest.
                words.insert(String(word.dropFirst(perLine)), at: 0)
                word = String(word.prefix(perLine))
                current = word
            } else {
                words.insert(word, at: 0)
            }
            lines.append(current)
            current = ""
            if lines.count == maxLines {
                truncated = !words.isEmpty
                break
            }
        }
        if !current.isEmpty { lines.append(current) }
        if truncated, let last = lines.popLast() {
            lines.append(truncate(last + " ", toCharacters: perLine, force: true))
        }
        return lines
    }

    /// The text cut to fit `maxWidth` pixels, ending in "…" when it was cut.
    public static func truncate(_ text: String, maxWidth: Int, scale: Int = 1) -> String {
        truncate(text, toCharacters: max(1, (maxWidth / scale + 1) / advance), force: false)
    }

    static func truncate(_ text: String, toCharacters n: Int, force: Bool) -> String {
        if !force && text.count <= n { return text }
        let kept = text.prefix(max(0, n - 1)).trimmingCharacters(in: .whitespaces)
        return kept + "…"
    }

    // MARK: - The glyph table

    /// Drawn for characters the table lacks.
    static let missing = parse("##### #...# #...# #...# #...# #...# #####")

    static let glyphs: [Character: [UInt8]] = {
        var table: [Character: [UInt8]] = [:]
        for (character, rows) in source { table[character] = parse(rows) }
        return table
    }()

    /// Rows separated by spaces, "#" ink and "." blank; rows not given are blank.
    static func parse(_ rows: String) -> [UInt8] {
        var bits = rows.split(separator: " ").map { row in
            row.reduce(UInt8(0)) { ($0 << 1) | ($1 == "#" ? 1 : 0) }
        }
        while bits.count < glyphHeight { bits.append(0) }
        return Array(bits.prefix(glyphHeight))
    }

    /// Designed for Inkwell on a 5×7 grid with two descender rows.
    static let source: [(Character, String)] = [
        (" ", ""),
        ("!", "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.."),
        ("\"", ".#.#. .#.#. .#.#."),
        ("#", ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#."),
        ("$", "..#.. .#### #.#.. .###. ..#.# ####. ..#.."),
        ("%", "##... ##..# ...#. ..#.. .#... #..## ...##"),
        ("&", ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#"),
        ("'", "..#.. ..#.. .#..."),
        ("(", "...#. ..#.. .#... .#... .#... ..#.. ...#."),
        (")", ".#... ..#.. ...#. ...#. ...#. ..#.. .#..."),
        ("*", "..... ..#.. #.#.# .###. #.#.# ..#.. ....."),
        ("+", "..... ..#.. ..#.. ##### ..#.. ..#.. ....."),
        (",", "..... ..... ..... ..... ..... ..... .##.. ..#.. .#..."),
        ("-", "..... ..... ..... .###. ..... ..... ....."),
        (".", "..... ..... ..... ..... ..... .##.. .##.."),
        ("/", "..... ....# ...#. ..#.. .#... #.... ....."),
        ("0", ".###. #...# #..## #.#.# ##..# #...# .###."),
        ("1", "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###."),
        ("2", ".###. #...# ....# ...#. ..#.. .#... #####"),
        ("3", ".###. #...# ....# ..##. ....# #...# .###."),
        ("4", "...#. ..##. .#.#. #..#. ##### ...#. ...#."),
        ("5", "##### #.... ####. ....# ....# #...# .###."),
        ("6", "..##. .#... #.... ####. #...# #...# .###."),
        ("7", "##### ....# ...#. ..#.. .#... .#... .#..."),
        ("8", ".###. #...# #...# .###. #...# #...# .###."),
        ("9", ".###. #...# #...# .#### ....# ...#. .##.."),
        (":", "..... ..... .##.. .##.. ..... .##.. .##.."),
        (";", "..... ..... .##.. .##.. ..... .##.. .##.. ..#.. .#..."),
        ("<", "...#. ..#.. .#... #.... .#... ..#.. ...#."),
        ("=", "..... ..... ##### ..... ##### ..... ....."),
        (">", ".#... ..#.. ...#. ....# ...#. ..#.. .#..."),
        ("?", ".###. #...# ....# ...#. ..#.. ..... ..#.."),
        ("@", ".###. #...# #.### #.#.# #.### #.... .###."),
        ("A", ".###. #...# #...# ##### #...# #...# #...#"),
        ("B", "####. #...# #...# ####. #...# #...# ####."),
        ("C", ".###. #...# #.... #.... #.... #...# .###."),
        ("D", "###.. #..#. #...# #...# #...# #..#. ###.."),
        ("E", "##### #.... #.... ####. #.... #.... #####"),
        ("F", "##### #.... #.... ####. #.... #.... #...."),
        ("G", ".###. #...# #.... #.### #...# #...# .####"),
        ("H", "#...# #...# #...# ##### #...# #...# #...#"),
        ("I", ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###."),
        ("J", "..### ...#. ...#. ...#. ...#. #..#. .##.."),
        ("K", "#...# #..#. #.#.. ##... #.#.. #..#. #...#"),
        ("L", "#.... #.... #.... #.... #.... #.... #####"),
        ("M", "#...# ##.## #.#.# #.#.# #...# #...# #...#"),
        ("N", "#...# #...# ##..# #.#.# #..## #...# #...#"),
        ("O", ".###. #...# #...# #...# #...# #...# .###."),
        ("P", "####. #...# #...# ####. #.... #.... #...."),
        ("Q", ".###. #...# #...# #...# #.#.# #..#. .##.#"),
        ("R", "####. #...# #...# ####. #.#.. #..#. #...#"),
        ("S", ".#### #.... #.... .###. ....# ....# ####."),
        ("T", "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."),
        ("U", "#...# #...# #...# #...# #...# #...# .###."),
        ("V", "#...# #...# #...# #...# #...# .#.#. ..#.."),
        ("W", "#...# #...# #...# #.#.# #.#.# #.#.# .#.#."),
        ("X", "#...# #...# .#.#. ..#.. .#.#. #...# #...#"),
        ("Y", "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.."),
        ("Z", "##### ....# ...#. ..#.. .#... #.... #####"),
        ("[", ".###. .#... .#... .#... .#... .#... .###."),
        ("\\", "..... #.... .#... ..#.. ...#. ....# ....."),
        ("]", ".###. ...#. ...#. ...#. ...#. ...#. .###."),
        ("^", "..#.. .#.#. #...#"),
        ("_", "..... ..... ..... ..... ..... ..... ..... #####"),
        ("`", ".#... ..#.. ...#."),
        ("a", "..... ..... .###. ....# .#### #...# .####"),
        ("b", "#.... #.... ####. #...# #...# #...# ####."),
        ("c", "..... ..... .###. #.... #.... #...# .###."),
        ("d", "....# ....# .#### #...# #...# #...# .####"),
        ("e", "..... ..... .###. #...# ##### #.... .###."),
        ("f", "..##. .#..# .#... ###.. .#... .#... .#..."),
        ("g", "..... ..... .#### #...# #...# #...# .#### ....# .###."),
        ("h", "#.... #.... #.##. ##..# #...# #...# #...#"),
        ("i", "..#.. ..... .##.. ..#.. ..#.. ..#.. .###."),
        ("j", "...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##.."),
        ("k", "#.... #.... #..#. #.#.. ##... #.#.. #..#."),
        ("l", ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###."),
        ("m", "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#"),
        ("n", "..... ..... #.##. ##..# #...# #...# #...#"),
        ("o", "..... ..... .###. #...# #...# #...# .###."),
        ("p", "..... ..... ####. #...# #...# #...# ####. #.... #...."),
        ("q", "..... ..... .#### #...# #...# #...# .#### ....# ....#"),
        ("r", "..... ..... #.##. ##..# #.... #.... #...."),
        ("s", "..... ..... .#### #.... .###. ....# ####."),
        ("t", ".#... .#... ###.. .#... .#... .#..# ..##."),
        ("u", "..... ..... #...# #...# #...# #..## .##.#"),
        ("v", "..... ..... #...# #...# #...# .#.#. ..#.."),
        ("w", "..... ..... #...# #...# #.#.# #.#.# .#.#."),
        ("x", "..... ..... #...# .#.#. ..#.. .#.#. #...#"),
        ("y", "..... ..... #...# #...# #...# #...# .#### ....# .###."),
        ("z", "..... ..... ##### ...#. ..#.. .#... #####"),
        ("{", "...## ..#.. ..#.. .#... ..#.. ..#.. ...##"),
        ("|", "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."),
        ("}", "##... ..#.. ..#.. ...#. ..#.. ..#.. ##..."),
        ("~", "..... ..... .#... #.#.# ...#. ..... ....."),
        // Symbols the labels use: "100·cos", "×0.5", truncation, a real minus sign.
        ("·", "..... ..... ..... .##.. .##.. ..... ....."),
        ("×", "..... #...# .#.#. ..#.. .#.#. #...# ....."),
        ("…", "..... ..... ..... ..... ..... ..... #.#.#"),
        ("−", "..... ..... ..... ##### ..... ..... ....."),
    ]
}
