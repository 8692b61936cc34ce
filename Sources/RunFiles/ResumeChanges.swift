// What a config changed between a run's saved config.toml and a `--resume` means. Keys that change the
// adapters' shapes, the data the saved position points into, or the learning-rate curve already half
// followed cannot continue that run and are refused with the reason; every other change is listed and
// applies from the resumed step on (sample prompts, validation cadence, precision, checkpointing…).
import Foundation
import StableDiffusion

public struct ResumeChanges: Sendable, Equatable {
    public struct Change: Sendable, Equatable, CustomStringConvertible {
        public var key: String
        public var was: String
        public var now: String
        /// Why the run cannot continue with it; nil when it can.
        public var refusal: String?
        public var description: String { "\(key) \(was) → \(now)" + (refusal.map { " (\($0))" } ?? "") }
    }

    public let changes: [Change]
    public var refused: [Change] { changes.filter { $0.refusal != nil } }

    /// The keys in which `now` differs from `saved`, for a run saved at `step`, and the data-parallel world size
    /// (`inkwell train --nproc`, torchrun) if it differs from the saved one.
    public init(saved: TrainingConfig, now: TrainingConfig, step: Int, savedWorldSize: Int = 1, worldSize: Int = 1) throws {
        var changes: [Change] = []
        if savedWorldSize != worldSize {
            changes.append(Change(key: "world size (ranks)", was: String(savedWorldSize), now: String(worldSize),
                                  refusal: "the saved position counts global batches of training.batch_size × \(Self.ranks(savedWorldSize)); "
                                      + "resume with \(Self.ranks(savedWorldSize))" + (savedWorldSize == 1 ? " (no --nproc)" : " (--nproc \(savedWorldSize))")))
        }
        guard let before = ConfigSections(toml: try saved.toml()), let after = ConfigSections(toml: try now.toml()) else {
            self.changes = changes
            return
        }
        for section in after.sections {
            for entry in section.entries {
                let key = "\(section.name).\(entry.key)"
                let old = before[section.name, entry.key]
                guard old != entry.value else { continue }
                changes.append(Change(key: key, was: old.map(Self.text) ?? "(unset)", now: Self.text(entry.value),
                                      refusal: Self.refusal(key, saved: saved, now: now, step: step)))
            }
        }
        self.changes = changes
    }

    /// Why changing `key` mid-run is refused; nil when the run can go on with it.
    static func refusal(_ key: String, saved: TrainingConfig, now: TrainingConfig, step: Int) -> String? {
        switch key {
        case "model.path", "model.variant", "model.tokenizer":
            return "the LoRA was trained against the saved model"
        case "lora.rank", "lora.targets", "lora.text_encoder":
            return "changes the adapters' shapes"
        case "data.dataset", "data.captions", "data.resolution", "data.flip", "training.seed",
             "training.batch_size", "training.gradient_accumulation":
            return "the saved position in the data order would point elsewhere"
        case "schedule.name", "schedule.warmup_steps", "schedule.num_cycles", "optimizer.learning_rate",
             "optimizer.text_encoder_learning_rate":
            return "bends the learning-rate curve the run has followed to step \(step)"
        case "training.max_steps":
            // A flat schedule past its warmup stays flat: more (or fewer) steps change nothing already done.
            let flat = saved.schedule.name == .constant
                || (saved.schedule.name == .constantWithWarmup && step >= saved.schedule.warmupSteps)
            if flat && now.training.maxSteps > step { return nil }
            return flat ? "the run is already at step \(step)"
                : "bends the \(saved.schedule.name.rawValue) learning-rate curve the run has followed to step \(step)"
        case "output.lora_name":
            return "the run's LoRA files already carry the name \(saved.runFolder.loraName)"
        default:
            return nil
        }
    }

    static func ranks(_ n: Int) -> String { n == 1 ? "1 rank" : "\(n) ranks" }

    static func text(_ value: ConfigValue) -> String {
        switch value {
        case .string(let s): return "\"\(s)\""
        case .raw(let s): return s
        case .bool(let b): return String(b)
        case .number(let x): return GenerationInfo.number(x)
        case .array(let a): return "[" + a.map(text).joined(separator: ", ") + "]"
        }
    }
}
