// A byte-level BPE tokenizer's tables as its files hold them: vocab.json + merges.txt (the slow tokenizer's
// files, what the Hub's SD1.5 ships) or the `model` of a tokenizers `tokenizer.json` (all transformers 5
// saves). Errors name the file and the entry.
import Foundation

struct BPEVocabulary {
    var vocab: [String: Int]
    /// (left, right) symbol pairs in rank order.
    var merges: [(String, String)]
    var mergesPath: String
    /// How an error names the vocabulary ("vocab.json").
    var vocabName: String
    /// Where merge `rank` sits in its file ("line 3", "model.merges[2]").
    var mergeLocation: (Int) -> String

    /// vocab.json (`{"token": id}`) and merges.txt (a `#version` header, then "left right" per line).
    static func read(vocab vocabURL: URL, merges mergesURL: URL) throws -> BPEVocabulary {
        guard let object = try readJSONObject(vocabURL) else { throw CLIPTokenizerError.missingFile(vocabURL.path) }
        let vocab = try ids(object, path: vocabURL.path, what: "the id of")
        guard FileManager.default.fileExists(atPath: mergesURL.path) else { throw CLIPTokenizerError.missingFile(mergesURL.path) }
        let data: Data
        do { data = try Data(contentsOf: mergesURL) } catch {
            throw CLIPTokenizerError.malformedFile(mergesURL.path, reason: "unreadable: \(error)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw CLIPTokenizerError.malformedFile(mergesURL.path, reason: "not UTF-8 text")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        var merges: [(String, String)] = []
        var lineNumbers: [Int] = []
        for (number, rawLine) in lines.enumerated() {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.hasPrefix("#version") { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw CLIPTokenizerError.malformedFile(mergesURL.path, reason: "line \(number + 1) \(String(line).debugDescription): expected two symbols separated by one space")
            }
            merges.append((String(parts[0]), String(parts[1])))
            lineNumbers.append(number + 1)
        }
        return BPEVocabulary(vocab: vocab, merges: merges, mergesPath: mergesURL.path, vocabName: "vocab.json",
                             mergeLocation: { "line \(lineNumbers[$0])" })
    }

    /// A tokenizers `tokenizer.json` with a BPE model; also its `added_tokens` entries (id, content, special,
    /// normalized), which transformers 5 keeps nowhere else.
    static func read(tokenizerJSON url: URL) throws -> (BPEVocabulary, addedTokens: [[String: Any]]) {
        func bad(_ reason: String) -> CLIPTokenizerError { .malformedFile(url.path, reason: reason) }
        guard let root = try readJSONObject(url) else { throw CLIPTokenizerError.missingFile(url.path) }
        guard let model = root["model"] as? [String: Any] else { throw bad("no \"model\" object") }
        guard model["type"] as? String == "BPE" else { throw bad("model.type is \(model["type"] ?? "absent"), not BPE") }
        guard let vocabObject = model["vocab"] as? [String: Any] else { throw bad("model.vocab is not an object") }
        let vocab = try ids(vocabObject, path: url.path, what: "model.vocab:")
        // tokenizers ≥ 0.20 writes each merge as a pair, older ones as "left right".
        guard let list = model["merges"] as? [Any] else { throw bad("model.merges is not a list") }
        let merges = try list.enumerated().map { index, entry -> (String, String) in
            if let pair = entry as? [String], pair.count == 2 { return (pair[0], pair[1]) }
            if let text = entry as? String {
                let parts = text.split(separator: " ", omittingEmptySubsequences: false)
                if parts.count == 2 { return (String(parts[0]), String(parts[1])) }
            }
            throw bad("model.merges[\(index)] is neither a pair of symbols nor \"left right\"")
        }
        let added = root["added_tokens"] as? [[String: Any]] ?? []
        return (BPEVocabulary(vocab: vocab, merges: merges, mergesPath: url.path, vocabName: "the tokenizer.json vocabulary",
                              mergeLocation: { "model.merges[\($0)]" }), added)
    }

    private static func ids(_ object: [String: Any], path: String, what: String) throws -> [String: Int] {
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(object.count)
        for (token, value) in object {
            guard let id = value as? Int, (0..<maxTokenId).contains(id) else {
                throw CLIPTokenizerError.malformedFile(path, reason: "\(what) \(token.debugDescription) is not an integer in 0..<2^24")
            }
            vocab[token] = id
        }
        return vocab
    }
}
