// Finding the source images in the input folder and naming their outputs.
//
// Every file under the input folder (recursively) is a candidate (pipes, devices and broken links too, so that
// they are reported by what they are), except hidden files and
// folders (".DS_Store", ".git") and the sidecar files datasets carry beside images (captions, metadata):
// the format is decided by the magic bytes, so a candidate that is not PNG, JPEG or WebP is reported,
// never silently ignored.
import Foundation

enum SourceFiles {
    /// Extensions of files that accompany images and are not images themselves.
    static let sidecarExtensions: Set<String> = ["txt", "caption", "json", "jsonl", "md", "toml", "yaml", "yml",
                                                 "csv", "xmp", "npz", "safetensors"]

    /// Relative paths ("/"-separated) of the candidates under `input`, sorted; `excluding` is a folder
    /// inside the input that must not be read (the output, when someone nests it there).
    static func scan(_ input: URL, excluding: URL) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DatasetError("--input \(input.path): no such folder")
        }
        let root = input.standardizedFileURL.resolvingSymlinksInPath()
        let excluded = [excluding.standardizedFileURL.path, excluding.standardizedFileURL.resolvingSymlinksInPath().path]
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles]) else {
            throw DatasetError("--input \(input.path): cannot list the folder")
        }
        var found: [String] = []
        for case let url as URL in walker {
            let path = url.standardizedFileURL.path
            if excluded.contains(where: { path == $0 || path.hasPrefix($0 + "/") }) {
                walker.skipDescendants()
                continue
            }
            // fileExists follows symbolic links, so a linked image counts as the file it points to. A link that
            // leads nowhere (a loop, a missing target) stays a candidate, so it is reported rather than skipped.
            var isFolder: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isFolder)
            if exists && isFolder.boolValue { continue }
            if sidecarExtensions.contains(url.pathExtension.lowercased()) { continue }
            guard path.hasPrefix(root.path + "/") else { continue }
            found.append(String(path.dropFirst(root.path.count + 1)))
        }
        return found.sorted()
    }

    /// The output stem for a source: its relative path without the extension, folders joined by "__",
    /// characters that are awkward in file names replaced by "_".
    static func stem(for source: String) -> String {
        let withoutExtension = (source as NSString).deletingPathExtension
        let joined = withoutExtension.split(separator: "/").joined(separator: "__")
        let cleaned = String(joined.map { c -> Character in
            c.isLetter || c.isNumber || "-_.+=@,() ".contains(c) ? c : "_"
        })
        let trimmed = cleaned.trimmingCharacters(in: CharacterSet(charactersIn: ". "))
        return trimmed.isEmpty ? "image" : trimmed
    }

    /// A stem not in `taken`: the plain one, else "<stem>-2", "<stem>-3", … (so "koi.png" and "koi.jpg"
    /// give "koi" and "koi-2"). Names already in the manifest are kept by their sources, so adding a
    /// file never renames an existing output.
    static func uniqueStem(for source: String, taken: Set<String>) -> String {
        let base = stem(for: source)
        if !taken.contains(base) { return base }
        var n = 2
        while taken.contains("\(base)-\(n)") { n += 1 }
        return "\(base)-\(n)"
    }
}
