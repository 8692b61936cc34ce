// Matches transformers' CLIPTokenizer (models/clip/tokenization_clip.py, transformers 5.23, which is backed by the
// `tokenizers` library): added/special tokens split out first, normalizer NFC → `\s+` → " " → lowercase, CLIP's split
// pattern, byte-level BPE with `</w>` word ends, bos/eos framing, truncation keeping eos, padding with the pad token.
import Foundation
import Torch

public enum CLIPTokenizerError: Error, CustomStringConvertible, Equatable {
    /// A file the tokenizer needs is not there.
    case missingFile(String)
    /// A file is there but unreadable or not what it should be; the reason says where.
    case malformedFile(String, reason: String)
    /// An argument the caller passed is unusable.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .missingFile(let path): return "CLIP tokenizer: missing file \(path)"
        case .malformedFile(let path, let reason): return "CLIP tokenizer: malformed file \(path): \(reason)"
        case .invalidArgument(let message): return "CLIP tokenizer: \(message)"
        }
    }
}

/// CLIP's byte-level BPE tokenizer, loaded from a diffusers `tokenizer/` folder (tokenizer.json, as transformers 5
/// saves it, or vocab.json + merges.txt, as the Hub's SD1.5 holds it; and the optional tokenizer_config.json,
/// special_tokens_map.json, added_tokens.json). Encoding caches BPE results per word.
public struct CLIPTokenizer: Sendable {
    public let bosTokenId: Int
    public let eosTokenId: Int
    public let padTokenId: Int
    public let unkTokenId: Int?
    /// Sequence length after padding/truncation (`model_max_length`, 77 for Stable Diffusion).
    public let maxLength: Int

    private let model: Model
    private let cache = WordCache()

    public static let defaultBOS = "<|startoftext|>"
    public static let defaultEOS = "<|endoftext|>"

    /// Loads a diffusers/transformers tokenizer folder. The vocabulary and merges come from `tokenizer.json` when
    /// present (what transformers 5 loads, and all it saves), else from vocab.json + merges.txt; special tokens,
    /// their flags and `model_max_length` (77 when absent) from the configs the way transformers reads them.
    public init(folder: URL) throws {
        let json = folder.appendingPathComponent("tokenizer.json")
        let files = (folder.appendingPathComponent("vocab.json"), folder.appendingPathComponent("merges.txt"))
        let vocabulary: BPEVocabulary
        var addedTokens: [[String: Any]]? = nil
        if FileManager.default.fileExists(atPath: json.path) {
            (vocabulary, addedTokens) = try BPEVocabulary.read(tokenizerJSON: json)
        } else if FileManager.default.fileExists(atPath: files.0.path) || FileManager.default.fileExists(atPath: files.1.path) {
            vocabulary = try BPEVocabulary.read(vocab: files.0, merges: files.1)
        } else {
            throw CLIPTokenizerError.missingFile("\(json.path) (or vocab.json and merges.txt beside it)")
        }
        var config = try readJSONObject(folder.appendingPathComponent("tokenizer_config.json")) ?? [:]
        // transformers 5 keeps the added tokens (with their flags) only in tokenizer.json.
        if config["added_tokens_decoder"] == nil, let addedTokens {
            config["added_tokens_decoder"] = Dictionary(addedTokens.compactMap { entry in
                (entry["id"] as? Int).map { (String($0), entry as Any) }
            }, uniquingKeysWith: { a, _ in a })
        }
        let specialMap = try readJSONObject(folder.appendingPathComponent("special_tokens_map.json"))
        let addedFile = folder.appendingPathComponent("added_tokens.json")
        let configPath = folder.appendingPathComponent("tokenizer_config.json").path
        let setup = try SpecialTokenSetup(config: config, configPath: configPath, specialMap: specialMap,
                                          addedTokens: try readJSONObject(addedFile), addedPath: addedFile.path)
        var maxLength = 77
        if let value = config["model_max_length"] as? Int, value > 0, value <= 1 << 20 { maxLength = value }
        try self.init(vocabulary: vocabulary, setup: setup, maxLength: maxLength)
    }

    /// A tokenizer from the two vocabulary files, like `CLIPTokenizer(vocab_file, merges_file, pad_token=...)`:
    /// bos `<|startoftext|>`, eos = unk = `<|endoftext|>`, all matched in the raw text.
    public init(vocabURL: URL, mergesURL: URL, padToken: String = CLIPTokenizer.defaultEOS, maxLength: Int = 77) throws {
        var setup = SpecialTokenSetup()
        setup.named = [("bos_token", TokenSpec(Self.defaultBOS, normalized: false, special: true)),
                       ("eos_token", TokenSpec(Self.defaultEOS, normalized: false, special: true)),
                       ("unk_token", TokenSpec(Self.defaultEOS, normalized: false, special: true)),
                       ("pad_token", TokenSpec(padToken, normalized: false, special: true))]
        try self.init(vocabulary: try BPEVocabulary.read(vocab: vocabURL, merges: mergesURL), setup: setup, maxLength: maxLength)
    }

    private init(vocabulary: BPEVocabulary, setup: SpecialTokenSetup, maxLength: Int) throws {
        guard maxLength >= 2 else { throw CLIPTokenizerError.invalidArgument("maxLength \(maxLength) leaves no room for bos and eos") }
        let model = try Model(vocabulary: vocabulary, setup: setup)
        func id(_ key: String) -> Int? { setup.named.last { $0.0 == key }.flatMap { model.id(of: $0.1.content) } }
        guard let bos = id("bos_token"), let eos = id("eos_token"), let pad = id("pad_token") else {
            throw CLIPTokenizerError.invalidArgument("the tokenizer needs bos, eos and pad tokens")
        }
        self.bosTokenId = bos
        self.eosTokenId = eos
        self.padTokenId = pad
        self.unkTokenId = id("unk_token")
        self.maxLength = maxLength
        self.model = model
    }

    // MARK: Encoding

    /// The ids of `text` framed by bos and eos, untruncated and unpadded (`tokenizer(text).input_ids`).
    public func encode(_ text: String) -> [Int] {
        [bosTokenId] + contentIds(text) + [eosTokenId]
    }

    /// `tokenizer(text, padding="max_length", truncation=True, max_length=maxLength)`: with truncation the content is
    /// cut to `maxLength - 2` tokens so that eos stays; with padding the ids are filled up to `maxLength` with the pad id.
    public func callAsFunction(_ text: String, padding: Bool = true, truncation: Bool = true) -> (ids: [Int], attentionMask: [Int]) {
        var content = contentIds(text)
        if truncation && content.count > maxLength - 2 { content.removeLast(content.count - (maxLength - 2)) }
        var ids = [bosTokenId] + content + [eosTokenId]
        var mask = [Int](repeating: 1, count: ids.count)
        if padding && ids.count < maxLength {
            let missing = maxLength - ids.count
            ids += [Int](repeating: padTokenId, count: missing)
            mask += [Int](repeating: 0, count: missing)
        }
        return (ids, mask)
    }

    /// Padded, truncated ids of each prompt as an int64 tensor of shape `[texts.count, maxLength]`.
    public func inputIds(_ texts: [String]) throws -> Tensor {
        var flat: [Int] = []
        flat.reserveCapacity(texts.count * maxLength)
        for text in texts { flat += self(text, padding: true, truncation: true).ids }
        return try Tensor(flat, shape: [texts.count, maxLength])
    }

    /// The token strings of `text` without bos/eos (`tokenizer.tokenize(text)`).
    public func tokenize(_ text: String) -> [String] {
        contentIds(text).map { model.tokens[$0] ?? "" }
    }

    /// Ids of `text` without bos/eos.
    private func contentIds(_ text: String) -> [Int] {
        var ids: [Int] = []
        let scalars = Array(text.unicodeScalars)
        // Tokens matched in the raw text are split out first; the rest is normalized, then the normalized added
        // tokens are split out, and what remains is pre-tokenized and BPE-encoded piece by piece.
        for segment in split(scalars[...], by: model.rawTokens) {
            switch segment {
            case .token(let id): ids.append(id)
            case .text(let raw):
                let normalized = normalizeCLIP(raw)
                for inner in split(normalized[...], by: model.normalizedTokens) {
                    switch inner {
                    case .token(let id): ids.append(id)
                    case .text(let piece): preTokenize(piece) { ids += bpe($0) }
                    }
                }
            }
        }
        return ids
    }

    private enum Segment {
        case text(ArraySlice<Unicode.Scalar>)
        case token(Int)
    }

    /// Splits on added tokens, leftmost-longest like tokenizers' Aho-Corasick matcher.
    private func split(_ text: ArraySlice<Unicode.Scalar>, by tokens: [AddedToken]) -> [Segment] {
        guard !tokens.isEmpty else { return [.text(text)] }
        var segments: [Segment] = []
        var start = text.startIndex, i = text.startIndex
        while i < text.endIndex {
            var best: AddedToken?
            for token in tokens where token.scalars.count <= text.endIndex - i && (best.map { token.scalars.count > $0.scalars.count } ?? true) {
                if text[i..<(i + token.scalars.count)].elementsEqual(token.scalars) { best = token }
            }
            if let best {
                if start < i { segments.append(.text(text[start..<i])) }
                segments.append(.token(best.id))
                i += best.scalars.count
                start = i
            } else {
                i += 1
            }
        }
        if start < text.endIndex { segments.append(.text(text[start..<text.endIndex])) }
        return segments
    }

    /// CLIP's split pattern `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`,
    /// keeping the matches, followed by the byte-level pre-tokenizer's GPT-2 split, which only changes the two
    /// special-token literals (into `<|`, the word, `|>`). Calls `body` with the UTF-8 bytes of each piece.
    private func preTokenize(_ text: ArraySlice<Unicode.Scalar>, _ body: ([UInt8]) -> Void) {
        func emit(_ piece: ArraySlice<Unicode.Scalar>) {
            var string = ""
            string.unicodeScalars.append(contentsOf: piece)
            body(Array(string.utf8))
        }
        var i = text.startIndex
        let end = text.endIndex
        while i < end {
            let scalar = text[i]
            let kind = scalarKind(scalar)
            if kind == .space { i += 1; continue }
            if scalar == "<", let length = specialLiterals.first(where: { text[i...].starts(with: $0) })?.count {
                emit(text[i..<(i + 2)])
                emit(text[(i + 2)..<(i + length - 2)])
                emit(text[(i + length - 2)..<(i + length)])
                i += length
                continue
            }
            if scalar == "'", i + 1 < end {
                let next = text[i + 1]
                if next == "s" || next == "t" || next == "m" || next == "d" {
                    emit(text[i..<(i + 2)]); i += 2; continue
                }
                if i + 2 < end {
                    let pair = (next, text[i + 2])
                    if pair == ("r", "e") || pair == ("v", "e") || pair == ("l", "l") {
                        emit(text[i..<(i + 3)]); i += 3; continue
                    }
                }
            }
            var j = i + 1
            switch kind {
            case .letter: while j < end && scalarKind(text[j]) == .letter { j += 1 }
            case .number: break
            default: while j < end && scalarKind(text[j]) == .other { j += 1 }
            }
            emit(text[i..<j])
            i = j
        }
    }

    /// BPE of one piece: byte symbols (the last with `</w>`), merged lowest rank first, leftmost on ties.
    private func bpe(_ bytes: [UInt8]) -> [Int] {
        if bytes.count == 1 {
            let id = model.byteEndIds[Int(bytes[0])]
            return id >= 0 ? [Int(id)] : unkTokenId.map { [$0] } ?? []
        }
        if let hit = cache.get(bytes) { return hit }
        var symbols: [Int32] = []
        for (i, byte) in bytes.enumerated() {
            let id = i == bytes.count - 1 ? model.byteEndIds[Int(byte)] : model.byteIds[Int(byte)]
            if id >= 0 { symbols.append(id) } else if let unk = unkTokenId { symbols.append(Int32(unk)) }
        }
        let result = model.merge(symbols).map(Int.init)
        cache.set(bytes, result)
        return result
    }

    // MARK: Decoding

    /// Token ids back to text like transformers: tokens concatenated, byte-level characters back to bytes (lossy
    /// UTF-8), every `</w>` a space, then stripped. Ids outside the vocabulary are ignored.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard id >= 0, id < model.tokens.count, let token = model.tokens[id] else { continue }
            if skipSpecialTokens && model.specialIds.contains(id) { continue }
            var tokenBytes: [UInt8] = []
            var allBytes = true
            for scalar in token.unicodeScalars {
                let v = Int(scalar.value)
                guard v < model.byteOfScalar.count, model.byteOfScalar[v] >= 0 else { allBytes = false; break }
                tokenBytes.append(UInt8(model.byteOfScalar[v]))
            }
            bytes += allBytes ? tokenBytes : Array(token.utf8)
        }
        // "</w>" is ASCII, so replacing it before the lossy UTF-8 decode equals replacing it after.
        var replaced: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let isMarker = bytes[i...].starts(with: "</w>".utf8)
            replaced.append(isMarker ? 0x20 : bytes[i])
            i += isMarker ? 4 : 1
        }
        let text = Array(String(decoding: replaced, as: UTF8.self).unicodeScalars)
        // Python's str.strip(): White_Space plus the information separators U+001C...U+001F.
        func isPythonSpace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace || (0x1C...0x1F).contains(s.value) }
        guard let first = text.firstIndex(where: { !isPythonSpace($0) }),
              let last = text.lastIndex(where: { !isPythonSpace($0) }) else { return "" }
        var out = ""
        out.unicodeScalars.append(contentsOf: text[first...last])
        return out
    }
}

// MARK: - Normalizer

/// The normalizer: NFC, then every run of whitespace to one space, then full (context-free) lowercase mapping per scalar.
func normalizeCLIP(_ text: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
    let composed = text.allSatisfy({ $0.isASCII }) ? Array(text) : nfc(text)
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(composed.count)
    var inSpace = false
    for scalar in composed {
        if scalarKind(scalar) == .space {
            if !inSpace { out.append(" ") }
            inSpace = true
            continue
        }
        inSpace = false
        if scalar.isASCII {
            let v = scalar.value
            out.append((65...90).contains(v) ? Unicode.Scalar(UInt8(v + 32)) : scalar)
        } else if scalar.properties.changesWhenLowercased {
            out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
        } else {
            out.append(scalar)
        }
    }
    return out
}

/// NFC as tokenizers computes it. Its tables (the unicode-normalization-alignments crate) are Unicode 9.0: a scalar
/// assigned later has no combining class, decomposition or composition there, so it is a barrier that passes through.
/// Foundation's composition of Hangul jamo is wrong (it joins archaic vowels such as U+1176, misses LV + T and drops
/// a trailing U+11A7), so Hangul runs are composed here (Unicode §3.12); nothing else composes with them. The other
/// runs go through Foundation.
func nfc(_ text: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
    enum Run: Equatable { case hangul, barrier, other }
    func run(_ scalar: Unicode.Scalar) -> Run {
        if isHangul(scalar) { return .hangul }
        guard let age = scalar.properties.age, age.major <= 9 else { return .barrier }
        return .other
    }
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(text.count)
    var i = text.startIndex
    while i < text.endIndex {
        let kind = run(text[i])
        var j = i + 1
        while j < text.endIndex && run(text[j]) == kind { j += 1 }
        switch kind {
        case .hangul: composeHangul(text[i..<j], into: &out)
        case .barrier: out.append(contentsOf: text[i..<j])
        case .other:
            var string = ""
            string.unicodeScalars.append(contentsOf: text[i..<j])
            out.append(contentsOf: string.precomposedStringWithCanonicalMapping.unicodeScalars)
        }
        i = j
    }
    return out
}

/// Hangul syllables and every jamo block (conjoining, extended, compatibility, halfwidth).
private func isHangul(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x1100...0x11FF, 0x3130...0x318F, 0xA960...0xA97F, 0xAC00...0xD7A3, 0xD7B0...0xD7FF, 0xFFA0...0xFFDC: return true
    default: return false
    }
}

private let syllableBase: UInt32 = 0xAC00, leadBase: UInt32 = 0x1100, vowelBase: UInt32 = 0x1161, trailBase: UInt32 = 0x11A7
private let leadCount: UInt32 = 19, vowelCount: UInt32 = 21, trailCount: UInt32 = 28, syllableCount: UInt32 = 11172

/// Canonical decomposition then composition of a run of Hangul: L V → LV, LV T → LVT.
private func composeHangul(_ run: ArraySlice<Unicode.Scalar>, into out: inout [Unicode.Scalar]) {
    var decomposed: [UInt32] = []
    for scalar in run {
        let v = scalar.value
        if v >= syllableBase && v < syllableBase + syllableCount {
            let index = v - syllableBase
            decomposed.append(leadBase + index / (vowelCount * trailCount))
            decomposed.append(vowelBase + index % (vowelCount * trailCount) / trailCount)
            if index % trailCount != 0 { decomposed.append(trailBase + index % trailCount) }
        } else {
            decomposed.append(v)
        }
    }
    var composed: [UInt32] = []
    for v in decomposed {
        if let last = composed.last {
            if last >= leadBase && last < leadBase + leadCount && v >= vowelBase && v < vowelBase + vowelCount {
                composed[composed.count - 1] = syllableBase + ((last - leadBase) * vowelCount + (v - vowelBase)) * trailCount
                continue
            }
            if last >= syllableBase && last < syllableBase + syllableCount && (last - syllableBase) % trailCount == 0
                && v > trailBase && v < trailBase + trailCount {
                composed[composed.count - 1] = last + (v - trailBase)
                continue
            }
        }
        composed.append(v)
    }
    for v in composed { if let scalar = Unicode.Scalar(v) { out.append(scalar) } }
}

// MARK: - Character classes

/// The special-token alternatives at the head of CLIP's split pattern.
private let specialLiterals = ["<|startoftext|>", "<|endoftext|>"].map { Array($0.unicodeScalars) }

enum ScalarKind { case space, letter, number, other }

/// The Unicode version of the Oniguruma tables in tokenizers 0.23: scalars assigned after it are neither
/// `\p{L}` nor `\p{N}` there, while Swift's tables already know them.
private let regexUnicodeMajor = 16

private let asciiKinds: [ScalarKind] = (0..<128).map { v -> ScalarKind in
    switch v {
    case 0x09...0x0D, 0x20: return .space
    case 0x30...0x39: return .number
    case 0x41...0x5A, 0x61...0x7A: return .letter
    default: return .other
    }
}

/// `\s` (White_Space), `\p{L}`, `\p{N}` or anything else, as the tokenizers regex engine classifies a scalar.
func scalarKind(_ scalar: Unicode.Scalar) -> ScalarKind {
    if scalar.value < 128 { return asciiKinds[Int(scalar.value)] }
    let properties = scalar.properties
    if properties.isWhitespace { return .space }
    let kind: ScalarKind
    switch properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: kind = .letter
    case .decimalNumber, .letterNumber, .otherNumber: kind = .number
    default: return .other
    }
    guard let age = properties.age, age.major <= regexUnicodeMajor else { return .other }
    return kind
}

/// The byte-level alphabet: printable Latin-1 bytes stand for themselves, the other 68 bytes for U+0100 onward.
private let byteScalars: [Unicode.Scalar] = {
    var table = [Unicode.Scalar](repeating: " ", count: 256)
    var next: UInt32 = 256
    for byte in 0..<256 {
        let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
        if printable {
            table[byte] = Unicode.Scalar(UInt8(byte))
        } else {
            table[byte] = Unicode.Scalar(next) ?? " "
            next += 1
        }
    }
    return table
}()

// MARK: - Special and added tokens

struct TokenSpec {
    var content: String, normalized: Bool, special: Bool
    init(_ content: String, normalized: Bool, special: Bool) { (self.content, self.normalized, self.special) = (content, normalized, special) }
}

struct AddedToken: Sendable {
    let scalars: [Unicode.Scalar]
    let id: Int
}

/// Which tokens are added/special and whether each is matched in the raw or in the normalized text, resolved from
/// the configs as transformers does: `added_tokens_decoder` (or legacy added_tokens.json and special_tokens_map.json,
/// whose entries override tokenizer_config.json), named tokens as strings (raw) or AddedToken objects (their
/// `normalized`), registered in the order added tokens, bos, eos, unk, sep, pad, cls, mask, extras, the last
/// registration of a content winning. lstrip/rstrip/single_word are not supported (false in every CLIP config).
struct SpecialTokenSetup {
    static let attributes = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]
    var added: [(id: Int, spec: TokenSpec)] = []
    var named: [(String, TokenSpec)] = []
    var extras: [TokenSpec] = []

    init() {}

    init(config: [String: Any], configPath: String, specialMap: [String: Any]?, addedTokens: [String: Any]?, addedPath: String) throws {
        var values = config
        var addedByContent: [String: TokenSpec] = [:]
        func bad(_ reason: String, _ path: String = configPath) -> CLIPTokenizerError { .malformedFile(path, reason: reason) }
        if let decoder = config["added_tokens_decoder"] {
            guard let entries = decoder as? [String: Any] else { throw bad("added_tokens_decoder is not an object") }
            for (key, value) in entries {
                guard let id = Int(key), (0..<maxTokenId).contains(id), let entry = value as? [String: Any], let content = entry["content"] as? String else {
                    throw bad("added_tokens_decoder entry \(key) needs an integer id and a content string")
                }
                let special = entry["special"] as? Bool ?? false
                let spec = TokenSpec(content, normalized: entry["normalized"] as? Bool ?? !special, special: special)
                added.append((id, spec))
                addedByContent[content] = spec
            }
        } else {
            for (key, value) in specialMap ?? [:] { values[key] = value }
            if let addedTokens {
                let specialContents = Set(Self.attributes.compactMap { values[$0].flatMap(Self.content) })
                for (content, value) in addedTokens {
                    guard let id = value as? Int, (0..<maxTokenId).contains(id) else {
                        throw bad("the id of \(content) is not an integer in 0..<2^24", addedPath)
                    }
                    let special = specialContents.contains(content)
                    let spec = TokenSpec(content, normalized: !special, special: special)
                    added.append((id, spec))
                    addedByContent[content] = spec
                }
            }
        }
        added.sort { $0.id < $1.id }
        func resolve(_ value: Any, _ key: String) throws -> TokenSpec? {
            if value is NSNull { return nil }
            guard let content = Self.content(value) else { throw bad("\(key) is neither a string nor an AddedToken object") }
            if var known = addedByContent[content] { known.special = true; return known }
            let normalized = (value as? [String: Any])?["normalized"] as? Bool ?? false
            return TokenSpec(content, normalized: normalized, special: true)
        }
        let defaults = ["bos_token": CLIPTokenizer.defaultBOS, "eos_token": CLIPTokenizer.defaultEOS,
                        "unk_token": CLIPTokenizer.defaultEOS, "pad_token": CLIPTokenizer.defaultEOS]
        for key in Self.attributes {
            if let value = values[key] {
                if let spec = try resolve(value, key) { named.append((key, spec)) }
            } else if let content = defaults[key] {
                named.append((key, TokenSpec(content, normalized: false, special: true)))
            }
        }
        if named.last(where: { $0.0 == "pad_token" }) == nil {  // an explicit null pad: fall back to CLIP's
            named.append(("pad_token", TokenSpec(CLIPTokenizer.defaultEOS, normalized: false, special: true)))
        }
        for key in ["additional_special_tokens", "extra_special_tokens"] {
            guard let list = values[key] as? [Any] else { continue }
            for value in list { if let spec = try resolve(value, key) { extras.append(spec) } }
        }
    }

    static func content(_ value: Any) -> String? {
        if let string = value as? String { return string }
        return (value as? [String: Any])?["content"] as? String
    }
}

// MARK: - Model tables

/// The immutable tables: vocabulary, merges, byte symbols, added tokens.
private final class Model: Sendable {
    let vocab: [String: Int]
    /// id → token string (vocabulary and added tokens); nil for unused ids.
    let tokens: [String?]
    let byteIds: [Int32]
    let byteEndIds: [Int32]
    /// (left id << 32 | right id) → (rank << 32 | merged id).
    let merges: [UInt64: UInt64]
    let byteOfScalar: [Int16]
    let rawTokens: [AddedToken]
    let normalizedTokens: [AddedToken]
    let addedIds: [String: Int]
    let specialIds: Set<Int>

    init(vocabulary: BPEVocabulary, setup: SpecialTokenSetup) throws {
        let vocab = vocabulary.vocab
        self.vocab = vocab

        var byteIds = [Int32](repeating: -1, count: 256), byteEndIds = byteIds
        var byteOfScalar = [Int16](repeating: -1, count: 324)
        for byte in 0..<256 {
            let symbol = String(Character(byteScalars[byte]))
            byteIds[byte] = vocab[symbol].map(Int32.init) ?? -1
            byteEndIds[byte] = vocab[symbol + "</w>"].map(Int32.init) ?? -1
            byteOfScalar[Int(byteScalars[byte].value)] = Int16(byte)
        }
        self.byteIds = byteIds
        self.byteEndIds = byteEndIds
        self.byteOfScalar = byteOfScalar

        // The rank of a merge is its index in the list.
        var merges: [UInt64: UInt64] = [:]
        merges.reserveCapacity(vocabulary.merges.count)
        for (rank, pair) in vocabulary.merges.enumerated() {
            func bad(_ reason: String) -> CLIPTokenizerError {
                .malformedFile(vocabulary.mergesPath, reason: "\(vocabulary.mergeLocation(rank)) \((pair.0 + " " + pair.1).debugDescription): \(reason)")
            }
            guard let left = vocab[pair.0], let right = vocab[pair.1] else { throw bad("a symbol is not in \(vocabulary.vocabName)") }
            guard let merged = vocab[pair.0 + pair.1] else { throw bad("the merged symbol is not in \(vocabulary.vocabName)") }
            merges[UInt64(left) << 32 | UInt64(right)] = UInt64(rank) << 32 | UInt64(merged)
        }
        self.merges = merges

        // Added and special tokens; the last registration of a content decides how it is matched.
        var flags: [String: TokenSpec] = [:]
        var order: [String] = []
        var addedIds: [String: Int] = [:]
        for (id, spec) in setup.added { addedIds[spec.content] = id }
        for spec in setup.added.map(\.spec) + setup.named.map(\.1) + setup.extras {
            if flags[spec.content] == nil { order.append(spec.content) }
            flags[spec.content] = spec
        }
        var addedStrings: [Int: String] = [:]
        var raw: [AddedToken] = [], normalized: [AddedToken] = [], special = Set<Int>()
        var maxId = vocab.values.max() ?? -1
        for content in order {
            guard let spec = flags[content], !content.isEmpty else { continue }
            guard let id = addedIds[content] ?? vocab[content] else {
                throw CLIPTokenizerError.invalidArgument("special token \(content.debugDescription) is in neither vocab.json nor the added tokens")
            }
            addedIds[content] = id
            addedStrings[id] = content
            maxId = max(maxId, id)
            if spec.normalized {
                // Matched in normalized text, so the pattern (and the token's string, as tokenize and decode show it)
                // is the normalized content.
                let scalars = normalizeCLIP(Array(content.unicodeScalars)[...])
                var text = ""
                text.unicodeScalars.append(contentsOf: scalars)
                addedStrings[id] = text
                if !scalars.isEmpty { normalized.append(AddedToken(scalars: scalars, id: id)) }
            } else {
                raw.append(AddedToken(scalars: Array(content.unicodeScalars), id: id))
            }
            if spec.special { special.insert(id) }
        }
        self.rawTokens = raw
        self.normalizedTokens = normalized
        self.addedIds = addedIds
        self.specialIds = special

        var tokens = [String?](repeating: nil, count: maxId + 1)
        for (token, id) in vocab { tokens[id] = token }
        for (id, string) in addedStrings { tokens[id] = string }
        self.tokens = tokens
    }

    func id(of content: String) -> Int? { addedIds[content] ?? vocab[content] }

    /// Applies the merges to a word's symbols like tokenizers' `Word::merge_all`: a heap of (rank, position) pairs,
    /// stale entries (a symbol merged away, or a pair that changed) skipped when popped.
    func merge(_ initial: [Int32]) -> [Int32] {
        let n = initial.count
        guard n >= 2 else { return initial }
        var ids = initial
        var prev = (0..<n).map { Int32($0) - 1 }
        var next = (0..<n).map { $0 + 1 < n ? Int32($0 + 1) : -1 }
        var alive = [Bool](repeating: true, count: n)
        var heap = MergeHeap()
        func push(_ left: Int, _ right: Int) {
            if let entry = merges[UInt64(UInt32(bitPattern: ids[left])) << 32 | UInt64(UInt32(bitPattern: ids[right]))] {
                heap.push(Candidate(rank: UInt32(entry >> 32), position: Int32(left), merged: Int32(truncatingIfNeeded: entry)))
            }
        }
        for i in 0..<(n - 1) { push(i, i + 1) }
        while let top = heap.pop() {
            let position = Int(top.position)
            guard alive[position], next[position] >= 0 else { continue }
            let right = Int(next[position])
            let key = UInt64(UInt32(bitPattern: ids[position])) << 32 | UInt64(UInt32(bitPattern: ids[right]))
            guard let entry = merges[key], Int32(truncatingIfNeeded: entry) == top.merged else { continue }
            ids[position] = top.merged
            alive[right] = false
            let after = next[right]
            next[position] = after
            if after >= 0 { prev[Int(after)] = Int32(position) }
            if prev[position] >= 0 { push(Int(prev[position]), position) }
            if after >= 0 { push(position, Int(after)) }
        }
        var out: [Int32] = []
        var i: Int32 = 0
        while i >= 0 { out.append(ids[Int(i)]); i = next[Int(i)] }
        return out
    }
}

private struct Candidate {
    let rank: UInt32, position: Int32, merged: Int32
    func before(_ other: Candidate) -> Bool { rank != other.rank ? rank < other.rank : position < other.position }
}

/// A binary min-heap on (rank, position).
private struct MergeHeap {
    private var items: [Candidate] = []

    mutating func push(_ item: Candidate) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].before(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Candidate? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count && items[left].before(items[smallest]) { smallest = left }
                if right < items.count && items[right].before(items[smallest]) { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}

/// BPE results per word (its UTF-8 bytes, so canonically equivalent spellings stay apart), shared by copies of
/// a tokenizer and safe across threads.
private final class WordCache: @unchecked Sendable {
    private var words: [[UInt8]: [Int]] = [:]
    private let lock = NSLock()
    private let capacity = 100_000

    func get(_ word: [UInt8]) -> [Int]? { lock.withLock { words[word] } }

    func set(_ word: [UInt8], _ ids: [Int]) {
        lock.withLock {
            if words.count >= capacity { words.removeAll(keepingCapacity: true) }
            words[word] = ids
        }
    }
}

// MARK: - Files

/// Ids are bounded so that a corrupt file cannot make the id → token table huge.
let maxTokenId = 1 << 24

/// The top-level object of a JSON file; nil when the file does not exist.
func readJSONObject(_ url: URL) throws -> [String: Any]? {
    guard FileManager.default.fileExists(atPath: url.path) else { return nil }
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
        throw CLIPTokenizerError.malformedFile(url.path, reason: "unreadable: \(error)")
    }
    let object: Any
    do { object = try JSONSerialization.jsonObject(with: data) } catch {
        throw CLIPTokenizerError.malformedFile(url.path, reason: "not valid JSON (\(error))")
    }
    guard let dictionary = object as? [String: Any] else {
        throw CLIPTokenizerError.malformedFile(url.path, reason: "the top level is not a JSON object")
    }
    return dictionary
}
