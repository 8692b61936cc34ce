// A small Markdown-to-HTML renderer for a pipeline's summary.md: headings, paragraphs, pipe tables
// with alignment, lists, block quotes, rules, fenced code, and inline code, **bold**, *emphasis*,
// links and images. Raw HTML is escaped, never passed through. Relative links and images resolve
// against the pipeline folder and become /files/ URLs (a path that climbs out of runs/ is dropped);
// images from elsewhere are not loaded (the page makes no request outside the dashboard), and a
// table cell that names one of the pipeline's runs links to that run's page.
import Foundation

struct MarkdownRenderer {
    /// The folder the document lives in, relative to runs/ ("" for runs/ itself).
    var base: String
    /// Run name or id → run id, for cells and links that name a run.
    var runs: [String: String] = [:]

    func render(_ text: String) -> String {
        var html = ""
        let lines = text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var i = 0
        var paragraph: [String] = []
        func flush() {
            if !paragraph.isEmpty { html += "<p>" + inline(paragraph.joined(separator: " ")) + "</p>\n" }
            paragraph = []
        }
        while i < lines.count {
            let line = lines[i]
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("```") || trimmed.hasPrefix("~~~") {
                flush()
                let fence = String(trimmed.prefix(3))
                var code: [String] = []
                i += 1
                while i < lines.count, !lines[i].trimmingCharacters(in: .whitespaces).hasPrefix(fence) { code.append(lines[i]); i += 1 }
                html += "<pre><code>" + escape(code.joined(separator: "\n")) + "</code></pre>\n"
                i += 1
            } else if trimmed.isEmpty {
                flush()
                i += 1
            } else if let level = headingLevel(trimmed) {
                flush()
                let body = trimmed.dropFirst(level).trimmingCharacters(in: CharacterSet(charactersIn: " #"))
                html += "<h\(level)>" + inline(body) + "</h\(level)>\n"
                i += 1
            } else if i + 1 < lines.count, trimmed.contains("|"), let aligns = separatorRow(lines[i + 1]) {
                flush()
                var rows: [[String]] = []
                i += 2
                while i < lines.count, lines[i].contains("|"), !lines[i].trimmingCharacters(in: .whitespaces).isEmpty {
                    rows.append(cells(lines[i]))
                    i += 1
                }
                html += table(header: cells(line), aligns: aligns, rows: rows)
            } else if trimmed.range(of: #"^([-*_])(\s*\1){2,}$"#, options: .regularExpression) != nil {
                flush()
                html += "<hr>\n"
                i += 1
            } else if listMarker(trimmed) != nil {
                flush()
                let ordered = listMarker(trimmed) == true
                var items: [String] = []
                while i < lines.count, let kind = listMarker(lines[i].trimmingCharacters(in: .whitespaces)), kind == ordered {
                    let item = lines[i].trimmingCharacters(in: .whitespaces)
                    let start = item.firstIndex(of: " ").map { item.index(after: $0) } ?? item.endIndex
                    items.append("<li>" + inline(String(item[start...])) + "</li>")
                    i += 1
                }
                let tag = ordered ? "ol" : "ul"
                html += "<\(tag)>" + items.joined() + "</\(tag)>\n"
            } else if trimmed.hasPrefix(">") {
                flush()
                var quoted: [String] = []
                while i < lines.count, lines[i].trimmingCharacters(in: .whitespaces).hasPrefix(">") {
                    quoted.append(String(lines[i].trimmingCharacters(in: .whitespaces).dropFirst()).trimmingCharacters(in: .whitespaces))
                    i += 1
                }
                html += "<blockquote>" + inline(quoted.joined(separator: " ")) + "</blockquote>\n"
            } else {
                paragraph.append(trimmed)
                i += 1
            }
        }
        flush()
        return html
    }

    // MARK: Blocks

    private func headingLevel(_ line: String) -> Int? {
        let hashes = line.prefix { $0 == "#" }.count
        guard (1...6).contains(hashes) else { return nil }
        let rest = line.dropFirst(hashes)
        return rest.isEmpty || rest.first == " " ? hashes : nil
    }

    /// true for "1." items, false for "-", "*", "+" items, nil for other lines.
    private func listMarker(_ line: String) -> Bool? {
        if line.hasPrefix("- ") || line.hasPrefix("* ") || line.hasPrefix("+ ") { return false }
        if line.range(of: #"^\d{1,9}[.)] "#, options: .regularExpression) != nil { return true }
        return nil
    }

    private func cells(_ line: String) -> [String] {
        var t = line.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("|") { t.removeFirst() }
        if t.hasSuffix("|") && !t.hasSuffix("\\|") { t.removeLast() }
        // `\|` is a literal bar inside a cell.
        let placeholder = "\u{0}"
        return t.replacingOccurrences(of: "\\|", with: placeholder).split(separator: "|", omittingEmptySubsequences: false)
            .map { $0.replacingOccurrences(of: placeholder, with: "|").trimmingCharacters(in: .whitespaces) }
    }

    /// The column alignments of a `| --- | :---: |` line, or nil when the line is not one.
    private func separatorRow(_ line: String) -> [String?]? {
        let parts = cells(line)
        guard !parts.isEmpty else { return nil }
        var aligns: [String?] = []
        for p in parts {
            guard p.range(of: #"^:?-{1,}:?$"#, options: .regularExpression) != nil else { return nil }
            let left = p.hasPrefix(":"), right = p.hasSuffix(":")
            aligns.append(left && right ? "center" : right ? "right" : left ? "left" : nil)
        }
        return aligns
    }

    private func table(header: [String], aligns: [String?], rows: [[String]]) -> String {
        func cell(_ tag: String, _ text: String, _ column: Int) -> String {
            let align = column < aligns.count ? aligns[column].map { " style=\"text-align:\($0)\"" } ?? "" : ""
            var body = inline(text)
            if tag == "td", let id = runs[text] { body = "<a href=\"#/run/\(escapeAttribute(encodePath(id)))\">" + escape(text) + "</a>" }
            return "<\(tag)\(align)>\(body)</\(tag)>"
        }
        var html = "<div class=\"table-wrap\"><table><thead><tr>"
        html += header.enumerated().map { cell("th", $1, $0) }.joined() + "</tr></thead><tbody>"
        for row in rows {
            let padded = row + Array(repeating: "", count: max(0, header.count - row.count))
            html += "<tr>" + padded.prefix(max(header.count, 1)).enumerated().map { cell("td", $1, $0) }.joined() + "</tr>"
        }
        return html + "</tbody></table></div>\n"
    }

    // MARK: Inline

    func inline(_ text: String) -> String {
        let chars = Array(text)
        var out = ""
        var i = 0
        var bold = false
        var em = false
        while i < chars.count {
            let c = chars[i]
            if c == "\\", i + 1 < chars.count, "\\`*_[]()#!|<>".contains(chars[i + 1]) {
                out += escape(String(chars[i + 1]))
                i += 2
            } else if c == "`", let end = chars[(i + 1)...].firstIndex(of: "`") {
                out += "<code>" + escape(String(chars[(i + 1)..<end])) + "</code>"
                i = end + 1
            } else if c == "!", i + 1 < chars.count, chars[i + 1] == "[", let (alt, target, next) = linkParts(chars, from: i + 1) {
                if let src = localURL(target) {
                    out += "<img src=\"\(escapeAttribute(src))\" alt=\"\(escapeAttribute(alt))\">"
                } else {
                    out += "<span class=\"missing-image\">[image: " + escape(alt) + "]</span>"
                }
                i = next
            } else if c == "[", let (label, target, next) = linkParts(chars, from: i) {
                if let href = linkURL(target) {
                    let external = href.hasPrefix("http://") || href.hasPrefix("https://")
                    let extra = external ? " target=\"_blank\" rel=\"noopener noreferrer\"" : ""
                    out += "<a href=\"\(escapeAttribute(href))\"\(extra)>" + inline(label) + "</a>"
                } else {
                    out += inline(label)
                }
                i = next
            } else if c == "*", i + 1 < chars.count, chars[i + 1] == "*" {
                out += bold ? "</strong>" : "<strong>"
                bold.toggle()
                i += 2
            } else if c == "*", em || (i + 1 < chars.count && !chars[i + 1].isWhitespace) {
                out += em ? "</em>" : "<em>"
                em.toggle()
                i += 1
            } else {
                out += escape(String(c))
                i += 1
            }
        }
        if em { out += "</em>" }
        if bold { out += "</strong>" }
        return out
    }

    /// `[label](target)` starting at `from` (the `[`): the label, the target and the index after `)`.
    private func linkParts(_ chars: [Character], from: Int) -> (String, String, Int)? {
        var depth = 0
        var close: Int?
        for j in from..<chars.count {
            if chars[j] == "[" { depth += 1 } else if chars[j] == "]" { depth -= 1; if depth == 0 { close = j; break } }
        }
        guard let close, close + 1 < chars.count, chars[close + 1] == "(",
              let end = chars[(close + 2)...].firstIndex(of: ")") else { return nil }
        let label = String(chars[(from + 1)..<close])
        // A title after the target ("file.png "title"") is dropped.
        let target = String(chars[(close + 2)..<end]).trimmingCharacters(in: .whitespaces)
            .split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
        return (label, target.trimmingCharacters(in: CharacterSet(charactersIn: "<>")), end + 1)
    }

    /// A relative path resolved against `base`, inside runs/; nil when it climbs out or is absolute.
    func resolve(_ target: String) -> String? {
        guard !target.isEmpty, !target.hasPrefix("/"), !target.contains("://"), !target.contains(":"),
              let decoded = target.split(separator: "#").first.map(String.init)?.removingPercentEncoding else { return nil }
        var parts = base.split(separator: "/").map(String.init)
        for part in decoded.split(separator: "/") {
            switch part {
            case ".": continue
            case "..":
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
            default: parts.append(String(part))
            }
        }
        return parts.isEmpty ? nil : parts.joined(separator: "/")
    }

    /// Images: only files of the dashboard.
    private func localURL(_ target: String) -> String? {
        resolve(target).map { "/files/" + encodePath($0) }
    }

    /// Links: web links open in a new tab, `#` anchors stay, a run folder opens its page, other paths are files.
    private func linkURL(_ target: String) -> String? {
        if target.hasPrefix("http://") || target.hasPrefix("https://") || target.hasPrefix("#") { return target }
        guard let path = resolve(target) else { return nil }
        let folder = path.hasSuffix("/") ? String(path.dropLast()) : path
        if let id = runs[folder] { return "#/run/" + encodePath(id) }
        return "/files/" + encodePath(path)
    }
}

/// Percent-encodes each component of a relative path (slashes kept).
func encodePath(_ path: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return path.split(separator: "/", omittingEmptySubsequences: false)
        .map { $0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "" }.joined(separator: "/")
}

func escape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for c in text {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        default: out.append(c)
        }
    }
    return out
}

func escapeAttribute(_ text: String) -> String {
    escape(text).replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
}
