// blip_plus within CLIP's 77-token window, measured with the real CLIP tokenizer (the sd15 folder that the
// clip_tokenizer fixture writes from the real vocabulary): hints are dropped whole from the end first, the
// caption is cut at a word boundary only when it alone is too long, and what is kept is as much as fits.
@testable import Captioning
import Foundation
import StableDiffusion
import Testing
import TestSupport

@Suite struct CaptionBudgetTests {
    let hints = StyleHints(StyleHints.defaultHints)

    func tokenizer() throws -> CLIPTokenizer { try CLIPTokenizer(folder: try Fixtures.url("clip_tokenizer", "sd15")) }

    /// A long, natural caption: 40 clauses of BLIP-like description.
    static let words = (0..<40).flatMap { i in
        ["a", "koi", "fish", "number", "\(i),", "swimming", "among", "lotus", "flowers", "and", "waves;"]
    }

    @Test func shortCaptionsGetEveryMissingHint() throws {
        let t = try tokenizer()
        let result = hints.enrich("a black and white drawing of a dragon.", tokenLimit: 77, tokenCount: { t.encode($0).count })
        #expect(result.text == "a black and white drawing of a dragon, clean line tattoo, high contrast, stencil, no shading")
        #expect(result.dropped.isEmpty && !result.truncated)
        #expect(t.encode(result.text).count <= 77)
    }

    @Test func hintsAreDroppedWholeFromTheEndAndAsManyAsFitAreKept() throws {
        let t = try tokenizer()
        let count: (String) -> Int = { t.encode($0).count }
        // The first caption length at which the caption fits with some hints but not with all of them.
        var found = 0
        for k in 1..<Self.words.count {
            let caption = Self.words.prefix(k).joined(separator: " ")
            let all = StyleHints.join(StyleHints.clean(caption), hints.phrases)
            let one = StyleHints.join(StyleHints.clean(caption), [hints.phrases[0]])
            if count(all) > 77 && count(one) <= 77 {
                found = k
                break
            }
        }
        #expect(found > 0, "a caption length that needs dropping exists")
        for k in [found, found + 1, found + 2] {
            let caption = Self.words.prefix(k).joined(separator: " ")
            let result = hints.enrich(caption, tokenLimit: 77, tokenCount: count)
            #expect(count(result.text) <= 77, "k \(k): \(count(result.text)) tokens")
            #expect(!result.truncated)
            #expect(result.added + result.dropped == hints.phrases, "hints kept in order, dropped from the end")
            #expect(!result.dropped.isEmpty)
            #expect(result.text == StyleHints.join(StyleHints.clean(caption), result.added))
            let oneMore = StyleHints.join(StyleHints.clean(caption), result.added + [result.dropped[0]])
            #expect(count(oneMore) > 77, "the first dropped hint did not fit")
        }
    }

    @Test func overlongCaptionsAreCutAtAWordBoundary() throws {
        let t = try tokenizer()
        let count: (String) -> Int = { t.encode($0).count }
        let caption = Self.words.joined(separator: " ")
        #expect(count(caption) > 77)
        let result = hints.enrich(caption, tokenLimit: 77, tokenCount: count)
        #expect(result.truncated && result.added.isEmpty && result.dropped == hints.phrases)
        #expect(count(result.text) <= 77)
        // A prefix of whole words (trailing punctuation removed), and one more word would not fit.
        let kept = result.text.split(separator: " ").count
        #expect(kept > 10)
        #expect(StyleHints.clean(Self.words.prefix(kept).joined(separator: " ")) == result.text)
        #expect(count(StyleHints.clean(Self.words.prefix(kept + 1).joined(separator: " "))) > 77)
        #expect(!result.text.hasSuffix(",") && !result.text.hasSuffix(";"))
    }

    @Test func theLimitCountsBosAndEos() throws {
        let t = try tokenizer()
        // 75 single-token words fill the window exactly; a 76th does not fit.
        let words = Array(repeating: "ink", count: 76)
        #expect(t.encode(words.prefix(75).joined(separator: " ")).count == 77)
        let result = StyleHints(phrases: []).enrich(words.joined(separator: " "), tokenLimit: 77, tokenCount: { t.encode($0).count })
        #expect(result.truncated && result.text.split(separator: " ").count == 75)
    }
}
