// Matches transformers models/bert/tokenization_bert.py `BertTokenizer` (5.23.0), which runs the Rust
// `tokenizers` pipeline: special tokens split out of the raw text, `BertNormalizer` (clean text, pad CJK
// ideographs, strip accents, lowercase), `BertPreTokenizer` (whitespace and punctuation), `WordPiece`
// (greedy longest match, `##` continuations, [UNK] for words over 100 characters), `[CLS] … [SEP]`, and
// the `WordPiece` decoder (with its per-token cleanup) plus transformers' optional `clean_up_tokenization`.
import Foundation

/// A tokenizer file is missing or unusable; names the file and, where it applies, the key.
public struct BertTokenizerError: Error, CustomStringConvertible {
    public let file: String
    public let message: String
    public var description: String { "\(file): \(message)" }
}

public struct BertTokenizer: Sendable {
    /// Token → id as transformers' `load_vocab` builds it (a repeated line keeps its last id).
    private let tokenToID: [[UInt8]: Int]
    /// Id → token; ids of repeated lines that lost their token decode to nothing, as in `tokenizers`.
    private let idToToken: [Int: String]
    public let vocabularySize: Int

    public let doLowerCase: Bool
    /// nil follows `doLowerCase`, as in the original BERT.
    public let stripAccents: Bool?
    public let tokenizeChineseChars: Bool
    public let unkToken: String
    public let sepToken: String
    public let padToken: String
    public let clsToken: String
    public let maskToken: String
    /// Tokens matched verbatim in the raw text and dropped by `skipSpecialTokens`.
    public let specialTokens: Set<String>
    public let modelMaxLength: Int
    public let maxInputCharsPerWord: Int
    /// transformers' `clean_up_tokenization_spaces` default for `decode` (False in v5 unless configured).
    public let cleanUpTokenizationSpaces: Bool
    /// Special tokens longest first, so matching prefers "[MASK]" over a shorter token it starts with.
    private let specialsByLength: [[Unicode.Scalar]]

    public init(vocabulary: [String], doLowerCase: Bool = true, stripAccents: Bool? = nil,
                tokenizeChineseChars: Bool = true, unkToken: String = "[UNK]", sepToken: String = "[SEP]",
                padToken: String = "[PAD]", clsToken: String = "[CLS]", maskToken: String = "[MASK]",
                additionalSpecialTokens: [String] = [], modelMaxLength: Int = 512, maxInputCharsPerWord: Int = 100,
                cleanUpTokenizationSpaces: Bool = false) throws {
        var tokenToID: [[UInt8]: Int] = [:]
        for (id, token) in vocabulary.enumerated() { tokenToID[Array(token.utf8)] = id }
        var idToToken: [Int: String] = [:]
        for (bytes, id) in tokenToID { idToToken[id] = String(decoding: bytes, as: UTF8.self) }
        self.tokenToID = tokenToID
        self.idToToken = idToToken
        vocabularySize = vocabulary.count
        self.doLowerCase = doLowerCase
        self.stripAccents = stripAccents
        self.tokenizeChineseChars = tokenizeChineseChars
        self.unkToken = unkToken
        self.sepToken = sepToken
        self.padToken = padToken
        self.clsToken = clsToken
        self.maskToken = maskToken
        self.modelMaxLength = modelMaxLength
        self.maxInputCharsPerWord = maxInputCharsPerWord
        self.cleanUpTokenizationSpaces = cleanUpTokenizationSpaces
        let specials = [unkToken, sepToken, padToken, clsToken, maskToken] + additionalSpecialTokens
        for token in specials where tokenToID[Array(token.utf8)] == nil {
            throw BertTokenizerError(file: "vocabulary", message: "special token \"\(token)\" is not in the vocabulary")
        }
        specialTokens = Set(specials)
        specialsByLength = Set(specials).map { Array($0.unicodeScalars) }.filter { !$0.isEmpty }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.lexicographicallyPrecedes($1, by: { $0.value < $1.value }) }
    }

    // MARK: Ids of tokens

    public func id(of token: String) -> Int? { tokenToID[Array(token.utf8)] }
    public func token(of id: Int) -> String? { idToToken[id] }
    public var clsTokenID: Int? { id(of: clsToken) }
    public var sepTokenID: Int? { id(of: sepToken) }
    public var padTokenID: Int? { id(of: padToken) }
    public var unkTokenID: Int? { id(of: unkToken) }

    // MARK: Encoding

    /// The tokens of `text`, without `[CLS]`/`[SEP]` (transformers' `tokenize`).
    public func tokenize(_ text: String) -> [String] {
        encodeTokens(text).map(\.token)
    }

    /// Ids as `tokenizer(text, add_special_tokens:, truncation: maxLength != nil, max_length:)` gives them:
    /// `[CLS] tokens [SEP]`, the tokens cut so that the whole fits in `maxLength`.
    public func encode(_ text: String, addSpecialTokens: Bool = true, maxLength: Int? = nil) -> [Int] {
        var ids = encodeTokens(text).map(\.id)
        let specials = addSpecialTokens ? 2 : 0
        if let maxLength { ids = Array(ids.prefix(Swift.max(maxLength - specials, 0))) }
        guard addSpecialTokens, let cls = clsTokenID, let sep = sepTokenID else { return ids }
        return [cls] + ids + [sep]
    }

    private func encodeTokens(_ text: String) -> [(token: String, id: Int)] {
        var out: [(token: String, id: Int)] = []
        for segment in splitOnSpecialTokens(Array(text.unicodeScalars)) {
            if segment.special {
                let token = String(String.UnicodeScalarView(segment.scalars))
                if let id = id(of: token) { out.append((token, id)) }
                continue
            }
            for word in preTokenize(normalize(segment.scalars)) { out += wordPiece(word) }
        }
        return out
    }

    /// The raw text cut around verbatim occurrences of special tokens, leftmost first, longest at a position
    /// (the `AddedVocabulary` split, which runs before normalization for non-normalized tokens).
    private func splitOnSpecialTokens(_ scalars: [Unicode.Scalar]) -> [(scalars: [Unicode.Scalar], special: Bool)] {
        var parts: [(scalars: [Unicode.Scalar], special: Bool)] = []
        var plain: [Unicode.Scalar] = []
        var i = 0
        outer: while i < scalars.count {
            for special in specialsByLength where scalars.count - i >= special.count {
                if scalars[i..<(i + special.count)].elementsEqual(special) {
                    if !plain.isEmpty { parts.append((plain, false)); plain = [] }
                    parts.append((special, true))
                    i += special.count
                    continue outer
                }
            }
            plain.append(scalars[i])
            i += 1
        }
        if !plain.isEmpty { parts.append((plain, false)) }
        return parts
    }

    /// `BertNormalizer`, in its order: clean text, pad CJK ideographs, strip accents, lowercase (per scalar,
    /// as the Rust normalizer maps each char on its own: no final-sigma rule).
    func normalize(_ input: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(input.count)
        for s in input {
            if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
            let cleaned: Unicode.Scalar = Self.isWhitespace(s) ? " " : s
            if tokenizeChineseChars && Self.isChineseChar(cleaned) {
                scalars += [" ", cleaned, " "]
            } else {
                scalars.append(cleaned)
            }
        }
        if stripAccents ?? doLowerCase {
            let decomposed = String(String.UnicodeScalarView(scalars)).decomposedStringWithCanonicalMapping
            scalars = decomposed.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }
        }
        if doLowerCase {
            scalars = scalars.flatMap { Array($0.properties.lowercaseMapping.unicodeScalars) }
        }
        return scalars
    }

    /// `BertPreTokenizer`: split on whitespace (dropped), then on punctuation (each mark its own word).
    func preTokenize(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for s in scalars {
            if s.properties.isWhitespace {
                if !current.isEmpty { words.append(current); current = [] }
            } else if Self.isPunctuation(s) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([s])
            } else {
                current.append(s)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// `WordPiece`: the longest vocabulary entry from the left, then `##`-prefixed continuations; a word
    /// that cannot be covered, or is longer than `maxInputCharsPerWord` characters, is one `[UNK]`.
    func wordPiece(_ word: [Unicode.Scalar]) -> [(token: String, id: Int)] {
        let unknown = unkTokenID.map { [(token: unkToken, id: $0)] } ?? []
        guard word.count <= maxInputCharsPerWord else { return unknown }
        var pieces: [(token: String, id: Int)] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: (token: String, id: Int)?
            while start < end {
                let piece = (start > 0 ? "##" : "") + String(String.UnicodeScalarView(word[start..<end]))
                if let id = id(of: piece) {
                    found = (piece, id)
                    break
                }
                end -= 1
            }
            guard let found else { return unknown }
            pieces.append(found)
            start = end
        }
        return pieces
    }

    // MARK: Decoding

    /// Text of `ids` as transformers' `decode`: unknown ids dropped, special tokens dropped when asked,
    /// `##` pieces joined to the previous token, the decoder's cleanup of spaces before punctuation, and
    /// `clean_up_tokenization` when `cleanUpTokenizationSpaces` (default: the tokenizer config's) is true.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false, cleanUpTokenizationSpaces: Bool? = nil) -> String {
        let tokens = ids.compactMap { idToToken[$0] }.filter { !skipSpecialTokens || !specialTokens.contains($0) }
        var text: [UInt8] = []
        for (i, token) in tokens.enumerated() {
            var piece = Array(token.utf8)
            if i > 0 {
                if piece.starts(with: Self.continuation) { piece.removeFirst(Self.continuation.count) } else { piece.insert(0x20, at: 0) }
            }
            text += Self.replaceAll(piece, Self.decoderCleanup)
        }
        if cleanUpTokenizationSpaces ?? self.cleanUpTokenizationSpaces {
            text = Self.replaceAll(text, Self.tokenizationCleanup)
        }
        return String(decoding: text, as: UTF8.self)
    }

    private static let continuation = Array("##".utf8)

    /// The Rust `WordPiece` decoder's `cleanup`, applied to each token (with its leading space) on its own.
    private static let decoderCleanup: [([UInt8], [UInt8])] = [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
        (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ].map { (Array($0.0.utf8), Array($0.1.utf8)) }

    /// transformers' `clean_up_tokenization`, applied to the whole text.
    private static let tokenizationCleanup: [([UInt8], [UInt8])] = [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
        (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ].map { (Array($0.0.utf8), Array($0.1.utf8)) }

    /// Each replacement in turn over the whole text, left to right without overlaps (`str.replace`), on
    /// bytes so that nothing is compared up to Unicode equivalence.
    private static func replaceAll(_ text: [UInt8], _ rules: [([UInt8], [UInt8])]) -> [UInt8] {
        var text = text
        for (pattern, replacement) in rules where text.count >= pattern.count {
            var out: [UInt8] = []
            out.reserveCapacity(text.count)
            var i = 0
            while i < text.count {
                if i + pattern.count <= text.count, text[i..<(i + pattern.count)].elementsEqual(pattern) {
                    out += replacement
                    i += pattern.count
                } else {
                    out.append(text[i])
                    i += 1
                }
            }
            text = out
        }
        return text
    }

    // MARK: Character classes (the Rust normalizer's and pre-tokenizer's)

    /// `\t`, `\n`, `\r` and Unicode White_Space.
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    /// Categories Cc, Cf, Cn, Co, Cs, except the whitespace controls `\t`, `\n`, `\r`.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// ASCII punctuation (which includes symbols such as `$`, `+`, `^`) or any Unicode P* category.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII, (0x21...0x2F).contains(s.value) || (0x3A...0x40).contains(s.value)
            || (0x5B...0x60).contains(s.value) || (0x7B...0x7E).contains(s.value) {
            return true
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT pads with spaces (not Hangul, Hiragana or Katakana).
    static func isChineseChar(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}

// MARK: - Loading from a transformers folder

extension BertTokenizer {
    /// The vocabulary from `vocab.txt`, or from `tokenizer.json`'s WordPiece model when there is no vocab.txt
    /// (transformers 5 saves only tokenizer.json), with `tokenizer_config.json` and `special_tokens_map.json`
    /// when present, read as `BertTokenizer.from_pretrained(folder)` reads them.
    public init(folder: URL) throws {
        let vocabFile = folder.appendingPathComponent("vocab.txt")
        let json = folder.appendingPathComponent("tokenizer.json")
        let useJSON = !FileManager.default.fileExists(atPath: vocabFile.path) && FileManager.default.fileExists(atPath: json.path)
        try self.init(vocabulary: useJSON ? try Self.wordPieceVocabulary(json) : try Self.vocabularyLines(file: vocabFile),
                      source: useJSON ? json : vocabFile, configFile: folder.appendingPathComponent("tokenizer_config.json"),
                      specialTokensMapFile: folder.appendingPathComponent("special_tokens_map.json"))
    }

    /// Missing config files mean transformers' defaults; a missing vocabulary is an error naming the file.
    public init(vocabFile: URL, configFile: URL? = nil, specialTokensMapFile: URL? = nil) throws {
        try self.init(vocabulary: try Self.vocabularyLines(file: vocabFile), source: vocabFile, configFile: configFile,
                      specialTokensMapFile: specialTokensMapFile)
    }

    /// `tokenizer.json`'s `model.vocab` (token → id) as the list vocab.txt would hold, in id order.
    static func wordPieceVocabulary(_ url: URL) throws -> [String] {
        func bad(_ message: String) -> BertTokenizerError { BertTokenizerError(file: url.path, message: message) }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw bad("cannot be read (missing or not a file)") }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let model = root["model"] as? [String: Any] else { throw bad("is not JSON with a \"model\" object") }
        guard model["type"] as? String == "WordPiece" else { throw bad("model.type is \(model["type"] ?? "absent"), not WordPiece") }
        guard let vocab = model["vocab"] as? [String: Any] else { throw bad("model.vocab is not an object") }
        var tokens = [String?](repeating: nil, count: vocab.count)
        for (token, value) in vocab {
            guard let id = value as? Int, tokens.indices.contains(id), tokens[id] == nil else {
                throw bad("model.vocab: the ids must be 0..<\(vocab.count), each once; \(token.debugDescription) has \(value)")
            }
            tokens[id] = token
        }
        return tokens.map { $0 ?? "" }
    }

    static func vocabularyLines(file vocabFile: URL) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: vocabFile.path) else {
            throw BertTokenizerError(file: vocabFile.path, message: "cannot be read (missing or not a file)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw BertTokenizerError(file: vocabFile.path, message: "is not UTF-8 text")
        }
        return Self.vocabularyLines(text)
    }

    init(vocabulary: [String], source vocabFile: URL, configFile: URL?, specialTokensMapFile: URL?) throws {
        let config = try Self.jsonObject(configFile)
        let specialsMap = try Self.jsonObject(specialTokensMapFile)
        let file = configFile?.path ?? vocabFile.path

        func flag(_ key: String, _ fallback: Bool) throws -> Bool {
            guard let value = config[key], !(value is NSNull) else { return fallback }
            guard let b = value as? Bool else { throw BertTokenizerError(file: file, message: "`\(key)` is not a boolean") }
            return b
        }
        // special_tokens_map.json overrides tokenizer_config.json, as in transformers.
        func special(_ key: String, _ fallback: String) throws -> String {
            for (source, object) in [(specialTokensMapFile?.path ?? file, specialsMap), (file, config)] {
                guard let value = object[key], !(value is NSNull) else { continue }
                guard let token = Self.tokenContent(value) else {
                    throw BertTokenizerError(file: source, message: "`\(key)` is neither a string nor an added token")
                }
                return token
            }
            return fallback
        }
        var stripAccents: Bool?
        if let value = config["strip_accents"], !(value is NSNull) {
            guard let b = value as? Bool else { throw BertTokenizerError(file: file, message: "`strip_accents` is not a boolean") }
            stripAccents = b
        }
        var additional: [String] = []
        for key in ["bos_token", "eos_token"] {
            if let token = Self.tokenContent(specialsMap[key] ?? config[key] as Any) { additional.append(token) }
        }
        for key in ["additional_special_tokens", "extra_special_tokens"] {
            if let list = (specialsMap[key] ?? config[key]) as? [Any] { additional += list.compactMap(Self.tokenContent) }
        }
        if let added = config["added_tokens_decoder"] as? [String: Any] {
            for entry in added.values {
                if let object = entry as? [String: Any], object["special"] as? Bool == true,
                   let token = object["content"] as? String { additional.append(token) }
            }
        }
        let maxLength = (config["model_max_length"] as? NSNumber)?.doubleValue ?? 512
        let (lower, chinese, cleanUp) = try (flag("do_lower_case", true), flag("tokenize_chinese_chars", true),
                                             flag("clean_up_tokenization_spaces", false))
        let (unk, sep, pad, cls, mask) = try (special("unk_token", "[UNK]"), special("sep_token", "[SEP]"),
                                              special("pad_token", "[PAD]"), special("cls_token", "[CLS]"),
                                              special("mask_token", "[MASK]"))
        do {
            try self.init(vocabulary: vocabulary, doLowerCase: lower, stripAccents: stripAccents, tokenizeChineseChars: chinese,
                          unkToken: unk, sepToken: sep, padToken: pad, clsToken: cls, maskToken: mask,
                          additionalSpecialTokens: additional,
                          // transformers writes a huge float for "no limit".
                          modelMaxLength: maxLength < Double(Int.max / 2) ? Int(maxLength) : Int.max / 2,
                          cleanUpTokenizationSpaces: cleanUp)
        } catch let error as BertTokenizerError {
            // The only failure left: a special token missing from the vocabulary.
            throw BertTokenizerError(file: vocabFile.path, message: error.message)
        }
    }

    /// One token per line, as `load_vocab` reads the file (universal newlines, only the newline stripped).
    static func vocabularyLines(_ text: String) -> [String] {
        var lines: [String] = []
        var line: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let byte = bytes.popFirst() {
            if byte == 0x0A || byte == 0x0D {
                if byte == 0x0D, bytes.first == 0x0A { bytes.removeFirst() }
                lines.append(String(decoding: line, as: UTF8.self))
                line = []
            } else {
                line.append(byte)
            }
        }
        if !line.isEmpty { lines.append(String(decoding: line, as: UTF8.self)) }
        return lines
    }

    /// A special-token value: a string, or transformers' serialised `AddedToken` (`{"content": ...}`).
    static func tokenContent(_ value: Any) -> String? {
        if let s = value as? String { return s }
        if let object = value as? [String: Any] { return object["content"] as? String }
        return nil
    }

    static func jsonObject(_ url: URL?) throws -> [String: Any] {
        guard let url, FileManager.default.fileExists(atPath: url.path) else { return [:] }
        guard let data = FileManager.default.contents(atPath: url.path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw BertTokenizerError(file: url.path, message: "is not a JSON object")
        }
        return object
    }
}
