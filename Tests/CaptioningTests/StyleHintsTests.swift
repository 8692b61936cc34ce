// The blip_plus de-duplication rule (StyleHints.swift): a hint is left out when all
// its words already occur in the caption (or in hints added before it), compared lowercased, with
// non-alphanumerics as separators and a trailing "s" ignored on words of four letters or more. The token
// budget with the real CLIP tokenizer is tested in TrainingTests/CaptionBudgetTests.swift; here a word
// count stands in for it.
import Testing
@testable import Captioning

@Suite struct StyleHintsTests {
    let hints = StyleHints(StyleHints.defaultHints)

    func enrich(_ caption: String, _ hints: StyleHints? = nil, limit: Int = 1000) -> StyleHints.Enriched {
        (hints ?? self.hints).enrich(caption, tokenLimit: limit, tokenCount: { $0.split(separator: " ").count })
    }

    @Test func defaultHintPhrases() {
        #expect(hints.phrases == ["clean line tattoo", "high contrast", "stencil", "no shading"])
    }

    @Test func hintsAreAppendedAfterTheCaption() {
        #expect(enrich("a drawing of a dragon.").text == "a drawing of a dragon, clean line tattoo, high contrast, stencil, no shading")
        #expect(enrich("  a   koi\n fish  ").text == "a koi fish, clean line tattoo, high contrast, stencil, no shading")
        #expect(enrich("").text == "clean line tattoo, high contrast, stencil, no shading")
    }

    @Test func phrasesAlreadySaidAreNotRepeated() {
        // Exact, in any case, in any order, anywhere.
        #expect(enrich("a koi, Clean Line Tattoo").added == ["high contrast", "stencil", "no shading"])
        #expect(enrich("a tattoo of a rose with a clean line").added == ["high contrast", "stencil", "no shading"])
        // Punctuation is a separator: "high-contrast" says "high contrast"; "stencil." says "stencil".
        #expect(enrich("a high-contrast stencil.").added == ["clean line tattoo", "no shading"])
        // Plurals of words of four letters or more.
        #expect(enrich("clean lines on a tattoo stencils sheet").added == ["high contrast", "no shading"])
        // Only some of the words is not enough: "line" alone does not say "clean line tattoo".
        #expect(enrich("a line drawing of a cat").added == hints.phrases)
        // Words, not substrings: "contrasting" is not "contrast", "highway" is not "high".
        #expect(enrich("a highway with contrasting colors").added.contains("high contrast"))
        // The rule is about words, not meaning: "with shading" lacks "no", so "no shading" is added.
        #expect(enrich("a skull with shading").added.contains("no shading"))
        #expect(enrich("a skull, no shading at all").added == ["clean line tattoo", "high contrast", "stencil"])
    }

    @Test func hintsAreDeduplicatedAmongThemselves() {
        let repeated = StyleHints("stencil, Stencil., high contrast, contrast high, ,  , !!, clean line tattoo")
        #expect(repeated.phrases == ["stencil", "Stencil.", "high contrast", "contrast high", "clean line tattoo"])
        #expect(enrich("a moth", repeated).added == ["stencil", "high contrast", "clean line tattoo"])
        #expect(StyleHints.words("High-Contrast LINES, it's") == ["high", "contrast", "line", "it", "s"])
        #expect(StyleHints.isPresent("no shading", in: ["shading", "no"]))
        #expect(!StyleHints.isPresent("!!", in: ["shading"]))
    }

    @Test func theBudgetDropsWholeHintsFromTheEndThenCutsTheCaption() {
        // 5 words of caption; each hint adds its words. Limit 10 words: "clean line tattoo" (3) and
        // "high contrast" (2) fit, "stencil" would make 11.
        let caption = "a koi fish in waves"
        let fitted = enrich(caption, limit: 10)
        #expect(fitted.text == "a koi fish in waves, clean line tattoo, high contrast")
        #expect(fitted.added == ["clean line tattoo", "high contrast"] && fitted.dropped == ["stencil", "no shading"])
        #expect(!fitted.truncated)
        // Too long alone: every hint goes, then the caption is cut after its last fitting word, comma removed.
        let cut = enrich("a koi, fish in waves", limit: 2)
        #expect(cut.text == "a koi" && cut.truncated && cut.added.isEmpty && cut.dropped == hints.phrases)
        // A single word longer than the limit is cut by characters.
        let tiny = StyleHints(phrases: []).enrich("dragon", tokenLimit: 3, tokenCount: { $0.count })
        #expect(tiny.text == "dra" && tiny.truncated)
    }
}
