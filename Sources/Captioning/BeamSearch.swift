// Matches transformers generation/utils.py (5.23.0) `GenerationMixin._sample` (greedy, do_sample=False) and
// `_beam_search` (the vectorised beam search with its static-shaped running/finished beams, top-2K
// continuations, length penalty, early-stopping heuristic and final crop), with the logits processors
// BLIP captioning uses: `RepetitionPenaltyLogitsProcessor` then `MinLengthLogitsProcessor`, and the
// stopping criteria `MaxLengthCriteria` and `EosTokenCriteria`. Every step runs as tensor ops.
import Foundation
import Torch

/// transformers' `early_stopping`: false (a heuristic), true (stop once `numBeams` hypotheses are done),
/// or "never" (canonical beam search).
public enum EarlyStopping: Sendable, Equatable {
    case heuristic
    case whenFull
    case never
}

/// The generation settings Inkwell exposes, with `GenerationConfig`'s defaults.
public struct GenerationOptions: Sendable, Equatable {
    /// Total length including the prompt. nil with `maxNewTokens` nil: 20 new tokens (capped at
    /// `max_position_embeddings`), as transformers does when `max_length` is left at its default.
    public var maxLength: Int?
    /// Takes precedence over `maxLength`.
    public var maxNewTokens: Int?
    /// `[SEP]` is forbidden while the sequence (prompt included) is shorter than this.
    public var minLength = 0
    public var numBeams = 1
    public var repetitionPenalty = 1.0
    public var lengthPenalty = 1.0
    public var earlyStopping = EarlyStopping.heuristic
    /// Keys and values of earlier tokens are kept instead of recomputed; the ids are the same either way.
    public var useCache = true

    public init(maxLength: Int? = nil, maxNewTokens: Int? = nil, minLength: Int = 0, numBeams: Int = 1,
                repetitionPenalty: Double = 1, lengthPenalty: Double = 1, earlyStopping: EarlyStopping = .heuristic,
                useCache: Bool = true) {
        self.maxLength = maxLength
        self.maxNewTokens = maxNewTokens
        self.minLength = minLength
        self.numBeams = numBeams
        self.repetitionPenalty = repetitionPenalty
        self.lengthPenalty = lengthPenalty
        self.earlyStopping = earlyStopping
        self.useCache = useCache
    }
}

/// The model side of decoding: next-token logits of each row, and keeping only some rows' state.
struct DecodingStep {
    /// Sequences [N, curLen] → float32 logits [N, vocab] of the next token.
    var logits: (Tensor) throws -> Tensor
    /// Keeps rows `index` (int64 [N]) of whatever state the model carries between steps.
    var reorder: (Tensor) throws -> Void
}

/// Greedy and beam search over `DecodingStep`; `eos` ends a sequence, `pad` fills finished ones.
struct BeamSearch {
    let eos: Int
    let pad: Int
    let maxLength: Int
    let options: GenerationOptions

    // MARK: Logits processors

    /// `RepetitionPenaltyLogitsProcessor` then `MinLengthLogitsProcessor` on `scores` [N, vocab].
    func process(_ sequences: Tensor, _ scores: Tensor) throws -> Tensor {
        var scores = scores
        let vocab = scores.size(1)
        let vocabIDs = try Tensor.arange(0, Double(vocab), device: scores.device).unsqueeze(0)
        if options.repetitionPenalty != 1 {
            // The tokens present in each row; a column at a time keeps memory at [N, vocab].
            var present = try Tensor.zeros([sequences.size(0), vocab], dtype: .bool, device: scores.device)
            for column in 0..<sequences.size(1) {
                present = try present.logicalOr(sequences.narrow(dim: 1, start: column, length: 1).eq(vocabIDs))
            }
            let p = options.repetitionPenalty
            let penalized = try Tensor.where(scores.lt(0), scores * p, scores / p)
            scores = try Tensor.where(present, penalized, scores)
        }
        if options.minLength > 0, sequences.size(1) < options.minLength {
            scores = try scores.maskedFill(vocabIDs.eq(Double(eos)), -Double.infinity)
        }
        return scores
    }

    // MARK: Greedy

    /// `_sample` without sampling: argmax each step, `pad` after a row's `eos`, until every row is done or
    /// the length reaches `maxLength`. Returns [N, finalLength].
    func greedy(_ inputIds: Tensor, _ step: DecodingStep) throws -> Tensor {
        var ids = inputIds
        var finished = try Tensor.zeros([ids.size(0)], dtype: .bool, device: ids.device)
        let padding = try Tensor.full([ids.size(0)], Double(pad), dtype: .int64, device: ids.device)
        while true {
            let scores = try process(ids, step.logits(ids))
            let next = try Tensor.where(finished, padding, scores.argmax(dim: -1))
            ids = try Tensor.cat([ids, next.unsqueeze(1)], dim: 1)
            finished = try finished.logicalOr(next.eq(Double(eos)))
            if try ids.size(1) >= maxLength || finished.all() { return ids }
        }
    }

    // MARK: Beam search

    /// `_beam_search` for `batch` inputs of `inputIds` [batch·beams, L] (each prompt repeated per beam).
    /// Returns the best hypothesis of each input, [batch, L + generated], unfinished tails filled with
    /// transformers' fill value (`pad`, or `eos` when `pad` is 0).
    func beamSearch(_ inputIds: Tensor, batch: Int, _ step: DecodingStep) throws -> Tensor {
        let beams = options.numBeams
        let keep = 2 * beams  // top-K with one eos token: max(2, 1 + 1) · beams
        let device = inputIds.device
        let promptLength = inputIds.size(1)
        var curLength = promptLength
        let lengthPenalty = options.lengthPenalty
        // `pad_token_id or eos_token_id[0]`: a pad id of 0 is falsy in Python, so finished tails get eos.
        let fill = pad != 0 ? pad : eos

        var running = try Tensor.full([batch, beams, maxLength], Double(fill), dtype: .int64, device: device)
        running = try Tensor.cat([inputIds.view([batch, beams, promptLength]),
                                  running.narrow(dim: 2, start: promptLength, length: maxLength - promptLength)], dim: 2)
        var sequences = running
        // Only the first beam starts live, so the first step does not pick the same token K times.
        var runningScores = try Tensor.cat([
            Tensor.zeros([batch, 1], device: device), Tensor.full([batch, beams - 1], -1e9, device: device),
        ], dim: 1)
        var scores = try Tensor.full([batch, beams], -1e9, device: device)
        var isFinished = try Tensor.zeros([batch, beams], dtype: .bool, device: device)
        var heuristicUnsatisfied = try Tensor.ones([batch, 1], dtype: .bool, device: device)
        var runningBeamIndices = try Tensor.full([batch, beams, maxLength - promptLength], -1, dtype: .int64, device: device)
        var beamIndices = runningBeamIndices
        let topBeamMask = try Tensor.arange(0, Double(keep), device: device).lt(Double(beams)).unsqueeze(0)
        let batchOffset = try Tensor.arange(0, Double(batch * beams), step: Double(beams), device: device).view([batch, 1])

        var flatRunning = inputIds
        while true {
            // a. next-token log-probabilities of every live beam, processed, plus the beam's score.
            let logits = try step.logits(flatRunning).to(.float32)
            let vocab = logits.size(1)
            var logProbs = try process(flatRunning, logits.logSoftmax(dim: -1))
            logProbs = try (logProbs.view([batch, beams, vocab]) + runningScores.unsqueeze(2)).reshape([batch, beams * vocab])

            // c. top-2K continuations over all beams.
            let (topLogProbs, topIndices) = try logProbs.topk(keep, dim: -1, largest: true, sorted: true)
            // Integer division through float64, exact here (an int64 op with a Swift scalar would give float32).
            let flatIndex = try topIndices.to(.float64)
            let fromBeam = try flatIndex.floorDivide(Double(vocab)).to(.int64)
            let topIDs = try flatIndex.remainder(Double(vocab)).to(.int64)
            var topSequences = try setColumn(gatherBeams(running, fromBeam), curLength, topIDs)
            let topBeamIndices = try setColumn(gatherBeams(runningBeamIndices, fromBeam), curLength - promptLength,
                                               fromBeam + batchOffset)

            // d. which continuations stop here: the length limit or an eos token.
            let hitsMax = curLength + 1 >= maxLength
            let hits = hitsMax ? try Tensor.ones([batch, keep], dtype: .bool, device: device) : try topIDs.eq(Double(eos))

            // e. the best K continuations that did not stop keep running.
            let runningLogProbs = try topLogProbs + hits.to(.float32) * -1e9
            let nextIndices = try runningLogProbs.topk(beams, dim: -1, largest: true, sorted: true).indices
            running = try gatherBeams(topSequences, nextIndices)
            runningScores = try runningLogProbs.gather(dim: 1, index: nextIndices)
            runningBeamIndices = try gatherBeams(topBeamIndices, nextIndices)

            // f. merge the continuations that just finished (among the top K) into the finished set.
            let justFinished = try hits.logicalAnd(topBeamMask)
            var finishedScores = try topLogProbs / pow(Double(curLength + 1 - promptLength), lengthPenalty)
            if options.earlyStopping == .whenFull {
                let full = try isFinished.logicalNot().sum(dims: [-1], keepDim: true).eq(0)
                finishedScores = try finishedScores + full.to(.float32) * -1e9
            }
            finishedScores = try finishedScores + heuristicUnsatisfied.logicalNot().to(.float32) * -1e9
            finishedScores = try finishedScores + justFinished.logicalNot().to(.float32) * -1e9
            topSequences = try Tensor.cat([sequences, topSequences], dim: 1)
            let mergedScores = try Tensor.cat([scores, finishedScores], dim: 1)
            let mergedIndices = try Tensor.cat([beamIndices, topBeamIndices], dim: 1)
            let mergedFinished = try Tensor.cat([isFinished, justFinished], dim: 1)
            let best = try mergedScores.topk(beams, dim: -1, largest: true, sorted: true).indices
            sequences = try gatherBeams(topSequences, best)
            scores = try mergedScores.gather(dim: 1, index: best)
            beamIndices = try gatherBeams(mergedIndices, best)
            isFinished = try mergedFinished.gather(dim: 1, index: best)

            // g. the model state follows the beams that keep running.
            try step.reorder(runningBeamIndices.select(dim: 2, index: curLength - promptLength).reshape([batch * beams]))
            curLength += 1

            // Can a running beam still beat the worst finished one?
            let bestLength = options.earlyStopping == .never && lengthPenalty > 0
                ? maxLength - promptLength : curLength - promptLength
            let bestRunning = try runningScores.narrow(dim: 1, start: 0, length: 1) / pow(Double(bestLength), lengthPenalty)
            let worstFinished = try Tensor.where(isFinished, scores.min(dim: 1, keepDim: true).values,
                                                 Tensor.full([], -1e9, device: device))
            heuristicUnsatisfied = try heuristicUnsatisfied.logicalAnd(
                bestRunning.gt(worstFinished).sum(dims: [-1], keepDim: true).gt(0))

            let improvementPossible = try heuristicUnsatisfied.sum().item() > 0
            let allDone = try options.earlyStopping == .whenFull && isFinished.all()
            if try !improvementPossible || allDone || hitsMax || hits.all() { break }
            flatRunning = try running.narrow(dim: 2, start: 0, length: curLength).reshape([batch * beams, curLength])
        }

        // The best hypothesis per input, cropped to the longest generated part among them.
        let bestIndices = try beamIndices.select(dim: 1, index: 0)
        let generated = try bestIndices.ne(-1).sum(dims: [1]).max().itemInt()
        return try sequences.select(dim: 1, index: 0).narrow(dim: 1, start: 0, length: promptLength + generated)
    }

    /// `_gather_beams`: rows `index` [B, n] of `t` [B, N, ...] along dim 1.
    private func gatherBeams(_ t: Tensor, _ index: Tensor) throws -> Tensor {
        var expanded = index
        var shape = index.shape
        for d in 2..<t.rank {
            expanded = try expanded.unsqueeze(-1)
            shape.append(t.size(d))
        }
        return try t.gather(dim: 1, index: expanded.expand(shape))
    }

    /// `t[:, :, column] = values` for `t` [B, N, T] and `values` [B, N], as a new tensor.
    private func setColumn(_ t: Tensor, _ column: Int, _ values: Tensor) throws -> Tensor {
        let width = t.size(2)
        return try Tensor.cat([t.narrow(dim: 2, start: 0, length: column), values.to(t.dtype).unsqueeze(2),
                               t.narrow(dim: 2, start: column + 1, length: width - column - 1)], dim: 2)
    }
}
