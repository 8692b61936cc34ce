// blip_plus: a captioner's description enriched with style hints ("clean line tattoo, high contrast, …").
//
// The rules, so that a caption never says the same thing twice and always fits the text encoder:
//
// 1. Hints are comma-separated phrases; blanks and phrases with no letters or digits are dropped.
// 2. A phrase is already present when every one of its words occurs among the words of the caption (and
//    of the hints accepted before it), in any order and position. Words are compared lowercased, with
//    every character that is not a letter or a digit taken as a separator (so "high-contrast" says
//    "high contrast", "Stencil." says "stencil"), and with a trailing "s" ignored on words of four or more
//    letters (so "lines" says "line"). A hint repeated within the hints is therefore added once.
// 3. The caption loses surrounding whitespace and its trailing punctuation ("… a koi." → "… a koi"); the
//    missing hints follow it, each after ", ".
// 4. The whole text must fit the token limit (77 for CLIP: bos + 75 + eos). Hints are dropped whole from
//    the end first; if the caption alone is still too long, it is cut after its last word that fits.
public struct StyleHints: Sendable, Equatable {
    public let phrases: [String]

    /// The hints blip_plus adds by default (comma-separated phrases).
    public static let defaultHints = "clean line tattoo, high contrast, stencil, no shading"

    /// Phrases from comma-separated text, e.g. `StyleHints.defaultHints`.
    public init(_ text: String) {
        self.init(phrases: text.split(separator: ",").map(String.init))
    }

    public init(phrases: [String]) {
        self.phrases = phrases
            .map { $0.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
            .filter { !StyleHints.words($0).isEmpty }
    }

    // MARK: The presence rule

    /// The comparable words of `text`: lowercased, split at every non-alphanumeric character, a trailing
    /// "s" dropped from words of four letters or more.
    public static func words(_ text: String) -> [String] {
        text.lowercased()
            .split(whereSeparator: { !($0.isLetter || $0.isNumber) })
            .map { word in word.count >= 4 && word.hasSuffix("s") ? String(word.dropLast()) : String(word) }
    }

    /// Whether all the words of `phrase` occur in `vocabulary` (a set of `words(_:)`).
    public static func isPresent(_ phrase: String, in vocabulary: Set<String>) -> Bool {
        let needed = words(phrase)
        return !needed.isEmpty && needed.allSatisfy(vocabulary.contains)
    }

    /// The hints that `caption` does not already say, in order, each phrase also checked against the hints
    /// accepted before it.
    public func missing(from caption: String) -> [String] {
        var vocabulary = Set(StyleHints.words(caption))
        var result: [String] = []
        for phrase in phrases where !StyleHints.isPresent(phrase, in: vocabulary) {
            result.append(phrase)
            vocabulary.formUnion(StyleHints.words(phrase))
        }
        return result
    }

    // MARK: Composing within the token budget

    /// What `enrich` produced, with what it had to leave out so the stage can report it.
    public struct Enriched: Sendable, Equatable {
        public var text: String
        /// The hints in `text`.
        public var added: [String]
        /// Missing hints that did not fit the token limit.
        public var dropped: [String]
        /// Whether the caption itself had to be cut.
        public var truncated: Bool
    }

    /// The caption with its missing hints, fitted to `tokenLimit` as `tokenCount` measures it (for CLIP:
    /// `tokenizer.encode(text).count`, which counts bos and eos, against 77).
    public func enrich(_ caption: String, tokenLimit: Int, tokenCount: (String) -> Int) -> Enriched {
        let base = StyleHints.clean(caption)
        var hints = missing(from: base)
        var dropped: [String] = []
        var text = StyleHints.join(base, hints)
        while tokenCount(text) > tokenLimit, let last = hints.popLast() {
            dropped.insert(last, at: 0)
            text = StyleHints.join(base, hints)
        }
        guard tokenCount(text) > tokenLimit else {
            return Enriched(text: text, added: hints, dropped: dropped, truncated: false)
        }
        // The caption alone is too long: keep the longest run of leading words that fits.
        let words = base.split(separator: " ")
        for count in stride(from: words.count - 1, through: 1, by: -1) {
            let candidate = StyleHints.clean(words[0..<count].joined(separator: " "))
            if !candidate.isEmpty, tokenCount(candidate) <= tokenLimit {
                return Enriched(text: candidate, added: [], dropped: dropped, truncated: true)
            }
        }
        // Not even the first word fits (a run of symbols): cut it by characters.
        var characters = Array(words.first.map(String.init) ?? "")
        while !characters.isEmpty, tokenCount(String(characters)) > tokenLimit { characters.removeLast() }
        return Enriched(text: String(characters), added: [], dropped: dropped, truncated: true)
    }

    /// Whitespace collapsed, trailing punctuation and spaces removed.
    static func clean(_ caption: String) -> String {
        var text = caption.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        while let last = text.last, last.isPunctuation || last.isWhitespace { text.removeLast() }
        return text
    }

    static func join(_ caption: String, _ hints: [String]) -> String {
        ([caption].filter { !$0.isEmpty } + hints).joined(separator: ", ")
    }
}
