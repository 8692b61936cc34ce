// CLIPTokenizer against transformers' CLIPTokenizer, run live by reference/fixtures/clip_tokenizer.py on the real
// 49,408-token vocabulary (from open-clip-torch): ids, attention masks, tokens and decodes must be identical.
import Foundation
import StableDiffusion
import Testing
import TestSupport
import Torch

private struct Corpus: Decodable {
    struct Meta: Decodable {
        let bos: Int, eos: Int, pad: Int, unk: Int?
        let max_length: Int
    }
    struct Framed: Decodable {
        let input_ids: [Int]
        let attention_mask: [Int]
    }
    struct Slice: Decodable {
        let start: Int, end: Int
        let text: String
        init(from decoder: Decoder) throws {
            var container = try decoder.unkeyedContainer()
            start = try container.decode(Int.self)
            end = try container.decode(Int.self)
            text = try container.decode(String.self)
        }
    }
    struct Result: Decodable {
        let encode: [Int]
        let tokens: [String]
        let padded: Framed
        let truncated: Framed
        let pad_only: Framed
        let decode: String
        let decode_with_special: String
        let decode_padded: String
        let decode_slices: [Slice]
    }
    struct Case: Decodable {
        let text: String
        let results: [String: Result]
    }
    struct Decoded: Decodable {
        let skip: String
        let keep: String
    }
    struct Decode: Decodable {
        let ids: [Int]
        let results: [String: Decoded]
    }
    let transformers: String
    let tokenizers: [String: Meta]
    let cases: [Case]
    let decodes: [Decode]

    static func load() throws -> Corpus { try loadedCorpus.get() }
}

/// Read once for all tests (a missing fixture throws from every test that uses it).
private let loadedCorpus = Result {
    try JSONDecoder().decode(Corpus.self, from: Data(contentsOf: Fixtures.url("clip_tokenizer", "corpus.json")))
}

private let variants = ["sd15", "sd2", "ti", "short", "minimal", "sd15_saved", "ti_saved"]

/// Each fixture folder's tokenizer, loaded once; `minimal` goes through the two-file initializer, like
/// `CLIPTokenizer(vocab_file, merges_file)`.
private let loadedTokenizers: [String: Result<CLIPTokenizer, any Error>] = Dictionary(uniqueKeysWithValues: variants.map { variant in
    (variant, Result {
        let folder = try Fixtures.url("clip_tokenizer", variant)
        if variant == "minimal" {
            return try CLIPTokenizer(vocabURL: folder.appendingPathComponent("vocab.json"),
                                     mergesURL: folder.appendingPathComponent("merges.txt"))
        }
        return try CLIPTokenizer(folder: folder)
    })
})

private func tokenizer(_ variant: String) throws -> CLIPTokenizer {
    try #require(loadedTokenizers[variant]).get()
}

private func describe(_ text: String) -> String {
    let shown = text.unicodeScalars.count > 60 ? String(String.UnicodeScalarView(text.unicodeScalars.prefix(60))) + "…" : text
    return shown.debugDescription
}

@Suite("CLIPTokenizer")
struct CLIPTokenizerTests {
    @Test("the corpus has the promised coverage")
    func corpusCoverage() throws {
        let corpus = try Corpus.load()
        #expect(corpus.cases.count >= 260)
        #expect(corpus.cases.contains { $0.text.isEmpty })
        #expect(corpus.cases.contains { ($0.results["sd15"]?.encode.count ?? 0) > 200 })
        #expect(Set(corpus.tokenizers.keys) == Set(variants))
    }

    @Test("special ids and max length equal transformers'", arguments: variants)
    func specialIds(variant: String) throws {
        let corpus = try Corpus.load()
        let tok = try tokenizer(variant)
        let meta = try #require(corpus.tokenizers[variant])
        #expect(tok.bosTokenId == meta.bos)
        #expect(tok.eosTokenId == meta.eos)
        #expect(tok.padTokenId == meta.pad)
        #expect(tok.unkTokenId == meta.unk)
        #expect(tok.maxLength == meta.max_length)
        #expect(tok.bosTokenId == 49406 && tok.eosTokenId == 49407)
        #expect(tok.maxLength == (variant == "short" ? 16 : 77))
    }

    @Test("ids, attention masks and tokens equal transformers' on every prompt", arguments: variants)
    func corpusIds(variant: String) throws {
        let corpus = try Corpus.load()
        let tok = try tokenizer(variant)
        for item in corpus.cases {
            let expected = try #require(item.results[variant])
            let label = "\(variant) \(describe(item.text))"
            #expect(tok.encode(item.text) == expected.encode, "encode \(label)")
            #expect(tok.tokenize(item.text) == expected.tokens, "tokens \(label)")
            let padded = tok(item.text)
            #expect(padded.ids == expected.padded.input_ids, "padded ids \(label)")
            #expect(padded.attentionMask == expected.padded.attention_mask, "padded mask \(label)")
            let truncated = tok(item.text, padding: false, truncation: true)
            #expect(truncated.ids == expected.truncated.input_ids, "truncated ids \(label)")
            #expect(truncated.attentionMask == expected.truncated.attention_mask, "truncated mask \(label)")
            let padOnly = tok(item.text, padding: true, truncation: false)
            #expect(padOnly.ids == expected.pad_only.input_ids, "pad-only ids \(label)")
            #expect(padOnly.attentionMask == expected.pad_only.attention_mask, "pad-only mask \(label)")
        }
    }

    @Test("decode equals transformers' on every prompt", arguments: variants)
    func corpusDecode(variant: String) throws {
        let corpus = try Corpus.load()
        let tok = try tokenizer(variant)
        for item in corpus.cases {
            let expected = try #require(item.results[variant])
            let label = "\(variant) \(describe(item.text))"
            #expect(tok.decode(expected.encode) == expected.decode, "decode \(label)")
            #expect(tok.decode(expected.encode, skipSpecialTokens: false) == expected.decode_with_special, "decode keeping specials \(label)")
            #expect(tok.decode(expected.padded.input_ids) == expected.decode_padded, "decode padded \(label)")
            for slice in expected.decode_slices {
                #expect(tok.decode(Array(expected.encode[slice.start..<slice.end])) == slice.text,
                        "decode [\(slice.start)..<\(slice.end)] \(label)")
            }
        }
        for item in corpus.decodes {
            let expected = try #require(item.results[variant])
            #expect(tok.decode(item.ids) == expected.skip, "decode \(variant) \(item.ids)")
            #expect(tok.decode(item.ids, skipSpecialTokens: false) == expected.keep, "decode keeping specials \(variant) \(item.ids)")
        }
    }

    @Test("a batch of prompts as an int64 [n, 77] tensor")
    func batchTensor() throws {
        let corpus = try Corpus.load()
        let tok = try tokenizer("sd15")
        let items = Array(corpus.cases.prefix(12))
        let ids = try tok.inputIds(items.map(\.text))
        let expected = try Tensor(items.flatMap { $0.results["sd15"]?.padded.input_ids ?? [] }, shape: [items.count, 77])
        try expectEqual(ids, expected, "input ids")
        #expect(ids.dtype == .int64)
    }

    @Test("encoding from many tasks at once gives the same ids")
    func concurrentEncoding() async throws {
        let corpus = try Corpus.load()
        let tok = try tokenizer("sd15")
        let expected = corpus.cases.map { $0.results["sd15"]?.encode ?? [] }
        let texts = corpus.cases.map(\.text)
        let results = await withTaskGroup(of: (Int, [Int]).self) { group in
            for _ in 0..<4 {
                for (index, text) in texts.enumerated() { group.addTask { (index, tok.encode(text)) } }
            }
            var out: [(Int, [Int])] = []
            for await result in group { out.append(result) }
            return out
        }
        #expect(results.count == texts.count * 4)
        for (index, ids) in results { #expect(ids == expected[index], "prompt \(index)") }
    }
}

// MARK: - Errors

@Suite("CLIPTokenizer errors")
struct CLIPTokenizerErrorTests {
    /// A copy of the sd15 fixture folder to damage.
    private func folderCopy() throws -> URL {
        let source = try Fixtures.url("clip_tokenizer", "sd15")
        let target = try temporaryDirectory().appendingPathComponent("tokenizer")
        try FileManager.default.copyItem(at: source, to: target)
        return target
    }

    private func expectError(naming file: String, in folder: URL, containing fragment: String = "",
                             sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try CLIPTokenizer(folder: folder)
            Issue.record("loading succeeded; expected an error naming \(file)", sourceLocation: sourceLocation)
        } catch {
            let message = String(describing: error)
            #expect(message.contains(folder.appendingPathComponent(file).path), "\(message)", sourceLocation: sourceLocation)
            #expect(message.contains(fragment), "\(message)", sourceLocation: sourceLocation)
        }
    }

    private func write(_ text: String, _ file: String, in folder: URL) throws {
        try Data(text.utf8).write(to: folder.appendingPathComponent(file))
    }

    @Test("a missing vocab.json or merges.txt is named")
    func missingFiles() throws {
        for file in ["vocab.json", "merges.txt"] {
            let folder = try folderCopy()
            try FileManager.default.removeItem(at: folder.appendingPathComponent(file))
            expectError(naming: file, in: folder, containing: "missing")
        }
    }

    @Test("malformed JSON files are named")
    func malformedJSON() throws {
        for file in ["vocab.json", "tokenizer_config.json", "special_tokens_map.json"] {
            let folder = try folderCopy()
            try write("{\"a\": 1,", file, in: folder)
            expectError(naming: file, in: folder, containing: "not valid JSON")
            try write("[1, 2]", file, in: folder)
            expectError(naming: file, in: folder, containing: "not a JSON object")
        }
        let folder = try folderCopy()
        try write("{\"a\": 1, \"b\": \"two\"}", "vocab.json", in: folder)
        expectError(naming: "vocab.json", in: folder, containing: "\"b\"")
    }

    @Test("malformed merges.txt lines are named with their line number")
    func malformedMerges() throws {
        var folder = try folderCopy()
        try write("#version: 0.2\ni n\nt h e\n", "merges.txt", in: folder)
        expectError(naming: "merges.txt", in: folder, containing: "line 3")
        folder = try folderCopy()
        try write("#version: 0.2\ni n\n\nt h\n", "merges.txt", in: folder)
        expectError(naming: "merges.txt", in: folder, containing: "line 3")
        folder = try folderCopy()
        try write("#version: 0.2\nq€ x\n", "merges.txt", in: folder)
        expectError(naming: "merges.txt", in: folder, containing: "not in vocab.json")
        folder = try folderCopy()
        try Data([0x23, 0xFF, 0xFE, 0x0A]).write(to: folder.appendingPathComponent("merges.txt"))
        expectError(naming: "merges.txt", in: folder, containing: "UTF-8")
    }

    @Test("a special token missing from the vocabulary is reported")
    func unknownSpecialToken() throws {
        let folder = try folderCopy()
        try write("{\"pad_token\": \"<pad>\", \"model_max_length\": 77}", "special_tokens_map.json", in: folder)
        #expect {
            _ = try CLIPTokenizer(folder: folder)
        } throws: { error in
            String(describing: error).contains("<pad>")
        }
    }

    @Test("a bad added_tokens_decoder in tokenizer_config.json is named")
    func malformedAddedTokens() throws {
        let folder = try folderCopy()
        try write("{\"added_tokens_decoder\": {\"x\": {\"content\": \"<a>\"}}}", "tokenizer_config.json", in: folder)
        expectError(naming: "tokenizer_config.json", in: folder, containing: "added_tokens_decoder")
    }

    @Test("a max length too short for bos and eos is refused")
    func shortMaxLength() throws {
        let folder = try Fixtures.url("clip_tokenizer", "minimal")
        #expect(throws: CLIPTokenizerError.self) {
            _ = try CLIPTokenizer(vocabURL: folder.appendingPathComponent("vocab.json"),
                                  mergesURL: folder.appendingPathComponent("merges.txt"), maxLength: 1)
        }
    }
}
