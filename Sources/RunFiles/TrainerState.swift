// state/trainer.json: a run's position and bookkeeping. The trainer saves it with the state's tensors
// (adapter weights, optimizer moments, generator states) and resumes from it; the dashboard and the
// pipeline summary read it for the best step and the training time. Non-finite numbers are written as
// the strings "nan" / "inf" / "-inf" (JSON has no NaN), and read back as such.
import Foundation
import Torch

public struct TrainerState: Codable, Equatable, Sendable {
    public static let fileName = "trainer.json"

    public var step = 0
    public var epoch = 0
    /// Index of the next micro-batch in the epoch's plan.
    public var position = 0
    public var bestValidationLoss: Double?
    public var bestStep: Int?
    public var lastValidationLoss: Double?
    public var nonFiniteTotal = 0
    public var nonFiniteStreak = 0
    public var smoothedLoss: Double?
    public var scaler: GradScaler?
    /// Training time so far, summed over resumed sessions.
    public var seconds = 0.0
    /// Set when a stop request cut the evaluation of `step` short (validation, samples): `--resume` redoes
    /// it first, and logs it with the step's training loss and gradient norm kept here. Absent otherwise.
    public var pendingEvaluation: PendingEvaluation?
    /// The number of data-parallel ranks the run trains with (absent: 1). The saved position counts global batches
    /// of `batch_size × worldSize`, so a resume needs the same.
    public var worldSize: Int?
    /// The CPU thread count the run trains with (absent in states saved before it was recorded). libtorch's CPU sums
    /// follow the count in their last bits, so `--resume` takes it again unless the user fixes another.
    public var cpuThreads: Int?

    public struct PendingEvaluation: Codable, Equatable, Sendable {
        public var trainLoss: Double?
        public var gradNorm: Double?

        public init(trainLoss: Double?, gradNorm: Double?) {
            self.trainLoss = trainLoss
            self.gradNorm = gradNorm
        }
    }

    public init() {}

    public func encoded() throws -> Data {
        let json = JSONEncoder()
        json.outputFormatting = [.prettyPrinted, .sortedKeys]
        json.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try json.encode(self)
    }

    public init(decoding data: Data) throws {
        let json = JSONDecoder()
        json.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        self = try json.decode(TrainerState.self, from: data)
    }

    /// The state of the run at `folder`; nil when it has none (not saved yet) or the file is unreadable.
    public static func read(_ folder: RunFolder) -> TrainerState? {
        guard let data = FileManager.default.contents(atPath: folder.trainerState.path) else { return nil }
        return try? TrainerState(decoding: data)
    }
}
