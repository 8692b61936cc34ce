// BertTokenizer against transformers' BertTokenizer (5.23.0, the Rust `tokenizers` pipeline), live: a
// corpus of strings (accents, CJK, punctuation, controls, special tokens in the text, unknown scripts, words
// over 100 characters) encoded and decoded by reference/fixtures/blip.py with a small WordPiece vocabulary.
// Ids, tokens and decoded text must be identical.
import Foundation
import Testing
import TestSupport
import Torch
@testable import Captioning

/// tokenizer.json: per tokenizer folder (BLIP's and variants of its tokenizer_config.json), the corpus
/// encoded and decoded by transformers, and id sequences decoded by it.
struct TokenizerFixture: Decodable {
    struct Encode: Decodable {
        let text: String
        let ids: [Int]
        let ids_no_special: [Int]
        let ids_truncated_8: [Int]
        let tokens: [String]
        let decoded: String
        let decoded_skip: String
        let decoded_skip_cleanup: String
        let decoded_skip_no_cleanup: String
    }
    struct Decode: Decodable {
        let ids: [Int]
        let decoded: String
        let decoded_skip: String
        let decoded_skip_cleanup: String
        let decoded_skip_no_cleanup: String
    }
    let encode: [Encode]
    let decode: [Decode]
}

/// The tokenizer folders the fixture writes: BLIP's own and one per changed tokenizer_config.json flag.
let tokenizerFolders = ["blip_tiny", "tokenizer_cased", "tokenizer_cased_strip_accents", "tokenizer_keep_accents",
                        "tokenizer_no_cjk_split", "tokenizer_cleanup", "blip_tiny_saved"]

@Suite struct BertTokenizerTests {
    @Test(arguments: tokenizerFolders) func encodesLikeTransformers(folder: String) throws {
        let tokenizer = try BertTokenizer(folder: Fixtures.url(blipArea, folder))
        guard let fixture = try blipJSON([String: TokenizerFixture].self, "tokenizer.json")[folder] else {
            Issue.record("tokenizer.json has no entry for \(folder)")
            return
        }
        #expect(fixture.encode.count >= 30)
        for c in fixture.encode {
            #expect(tokenizer.encode(c.text) == c.ids, "ids of \(c.text.debugDescription)")
            #expect(tokenizer.encode(c.text, addSpecialTokens: false) == c.ids_no_special,
                    "ids without specials of \(c.text.debugDescription)")
            #expect(tokenizer.encode(c.text, maxLength: 8) == c.ids_truncated_8, "truncated ids of \(c.text.debugDescription)")
            #expect(tokenizer.tokenize(c.text) == c.tokens, "tokens of \(c.text.debugDescription)")
        }
    }

    @Test(arguments: tokenizerFolders) func decodesLikeTransformers(folder: String) throws {
        let tokenizer = try BertTokenizer(folder: Fixtures.url(blipArea, folder))
        guard let fixture = try blipJSON([String: TokenizerFixture].self, "tokenizer.json")[folder] else {
            Issue.record("tokenizer.json has no entry for \(folder)")
            return
        }
        let cases = fixture.encode.map { ($0.ids, $0.decoded, $0.decoded_skip, $0.decoded_skip_cleanup, $0.decoded_skip_no_cleanup) }
            + fixture.decode.map { ($0.ids, $0.decoded, $0.decoded_skip, $0.decoded_skip_cleanup, $0.decoded_skip_no_cleanup) }
        for (ids, decoded, skipped, cleaned, uncleaned) in cases {
            #expect(tokenizer.decode(ids) == decoded, "decode \(ids)")
            #expect(tokenizer.decode(ids, skipSpecialTokens: true) == skipped, "decode \(ids), skipping specials")
            #expect(tokenizer.decode(ids, skipSpecialTokens: true, cleanUpTokenizationSpaces: true) == cleaned,
                    "decode \(ids), skipping specials, cleaning up spaces")
            #expect(tokenizer.decode(ids, skipSpecialTokens: true, cleanUpTokenizationSpaces: false) == uncleaned,
                    "decode \(ids), skipping specials, not cleaning up spaces")
        }
    }

    @Test func readsTheTokenizerConfig() throws {
        let tokenizer = try BertTokenizer(folder: tinyFolder())
        // BLIP-large's tokenizer_config.json as the fixture writes it (formats.md §6.3).
        #expect(tokenizer.doLowerCase && tokenizer.stripAccents == nil && tokenizer.tokenizeChineseChars)
        #expect(tokenizer.modelMaxLength == 512 && !tokenizer.cleanUpTokenizationSpaces)
        #expect(tokenizer.clsTokenID == 101 && tokenizer.sepTokenID == 102 && tokenizer.padTokenID == 0
                && tokenizer.unkTokenID == 100)
        #expect(tokenizer.specialTokens == ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"])
        let cased = try BertTokenizer(folder: Fixtures.url(blipArea, "tokenizer_cased_strip_accents"))
        #expect(!cased.doLowerCase && cased.stripAccents == true)
    }

    @Test func missingFilesAndTokensAreNamed() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: BertTokenizerError.self) { try BertTokenizer(folder: dir) }
        do {
            _ = try BertTokenizer(folder: dir)
        } catch let error as BertTokenizerError {
            #expect(error.file.hasSuffix("vocab.txt"))
        }
        try "[PAD]\n[CLS]\n[SEP]\n".write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        do {
            _ = try BertTokenizer(folder: dir)
            Issue.record("a vocabulary without [UNK] was accepted")
        } catch let error as BertTokenizerError {
            #expect(error.description.contains("[UNK]") && error.file.hasSuffix("vocab.txt"))
        }
        try "[PAD]\n[UNK]\r\n[CLS]\r[SEP]\n[MASK]\nx".write(to: dir.appendingPathComponent("vocab.txt"), atomically: true,
                                                           encoding: .utf8)
        try "{\"do_lower_case\": \"yes\"}".write(to: dir.appendingPathComponent("tokenizer_config.json"),
                                               atomically: true, encoding: .utf8)
        do {
            _ = try BertTokenizer(folder: dir)
            Issue.record("a non-boolean do_lower_case was accepted")
        } catch let error as BertTokenizerError {
            #expect(error.description.contains("do_lower_case") && error.file.hasSuffix("tokenizer_config.json"))
        }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("tokenizer_config.json"))
        // Universal newlines, and a last line without one.
        let tokenizer = try BertTokenizer(folder: dir)
        #expect(tokenizer.vocabularySize == 6 && tokenizer.encode("x") == [2, 5, 3])
    }
}
