// state/trainer.json: the CPU thread count a run trains with is recorded, and states saved before it was are
// still read (the key absent).
import Foundation
import Testing
import RunFiles

@Suite struct TrainerStateTests {
    @Test func cpuThreadsRoundTrip() throws {
        var state = TrainerState()
        state.step = 12
        state.cpuThreads = 2
        let data = try state.encoded()
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(json["cpuThreads"] as? Int == 2)
        let read = try TrainerState(decoding: data)
        #expect(read == state && read.cpuThreads == 2)

        // Not recorded: the key is left out, and reads back as nil.
        state.cpuThreads = nil
        let without = try state.encoded()
        #expect(!String(decoding: without, as: UTF8.self).contains("cpuThreads"))
        #expect(try TrainerState(decoding: without).cpuThreads == nil)
    }

    /// A trainer.json as Inkwell wrote it before the thread count was recorded.
    @Test func olderStatesWithoutTheCountStillDecode() throws {
        let old = """
            {
              "bestStep" : 4,
              "bestValidationLoss" : 1.1614106,
              "epoch" : 0,
              "lastValidationLoss" : 1.1614106,
              "nonFiniteStreak" : 0,
              "nonFiniteTotal" : 0,
              "position" : 4,
              "seconds" : 1.25,
              "smoothedLoss" : "nan",
              "step" : 4
            }
            """
        let state = try TrainerState(decoding: Data(old.utf8))
        #expect(state.step == 4 && state.bestStep == 4 && state.cpuThreads == nil && state.worldSize == nil)
        #expect(state.smoothedLoss?.isNaN == true)
    }
}
