// The training loop: optimizer steps of accumulated micro-batches, the NaN guard, evaluation
// (validation loss, samples, CLIP score, checkpoints) on a fixed cadence, and clean stops.
import AtomicFile
import Foundation
import Imaging
import LoRA
import RunFiles
import StableDiffusion
import Torch

extension LoRATrainer {
    /// Trains to `training.max_steps` (continuing a saved state when `resume`). `shouldStop` is polled
    /// after every step, and inside the slow parts between steps: before each latent to cache, each validation
    /// image, each denoising step of the samples (Ctrl-C). The state as of the last completed step is saved
    /// (an evaluation cut short is marked pending: `--resume` redoes it first) and the run returns with
    /// `interrupted`; `stopSignal`
    /// names what asked (SIGINT, SIGTERM, …) for status.json. status.json says "running" from the start,
    /// then how the session ended: finished, stopped, or failed with the error (written before it propagates).
    public func run(resume: Bool, shouldStop: () -> Bool = { false }, stopSignal: () -> String? = { nil },
                    events: (TrainingEvent) -> Void = { _ in }) throws -> TrainingSummary {
        // One CPU thread count for the whole run (the automatic choice no longer follows the load until it ends).
        let held = CPUPacing.holdForTraining()
        defer { CPUPacing.release() }
        // status.json is rank 0's, like every file of the run.
        heartbeat = writesFiles ? TrainerHeartbeat(folder: run, step: state.step, totalSteps: config.training.maxSteps,
                                                   secondsBefore: state.seconds, interval: statusInterval) : nil
        do {
            let summary = try train(resume: resume, heldThreads: held, shouldStop: shouldStop, events: events)
            heartbeat?.write(summary.interrupted ? .stopped(signal: stopSignal()) : .finished)
            return summary
        } catch {
            heartbeat?.write(.failed(error: String(describing: error)))
            throw error
        }
    }

    private func train(resume: Bool, heldThreads: Int, shouldStop: () -> Bool, events: (TrainingEvent) -> Void) throws -> TrainingSummary {
        if writesFiles {
            try FileManager.default.createDirectory(at: run.root, withIntermediateDirectories: true)
            // What a killed run's writes left half done (`.state.tmp` is cleared by the next state save);
            // before the start's broadcast below, so no other rank is writing yet.
            run.removeTemporaries()
            AtomicWrite.removeTemporaries(in: latents.directory)
            try writeAtomically(Data(try config.toml().utf8), to: run.config)
        }
        let resumed = resume ? try loadState() : false
        if resume && !resumed { events(.message("no saved state in \(run.state.path): starting from step 0")) }
        // Before anything computes (latents included): the count the run recorded, unless the user fixed another.
        try holdThreads(resumed: resumed, held: heldThreads, events: events)
        // DDP's start: every rank continues from rank 0's adapters (equal already, from one seed or one saved state).
        try dataParallel?.broadcast(network.parameters.map(\.1))
        heartbeat?.step = state.step
        heartbeat?.secondsBefore = state.seconds
        heartbeat?.write(.running)
        let log = writesFiles ? try TrainingLog(url: run.log, truncateAfter: resumed ? state.step : nil) : nil
        var cachingStopped = false
        do {
            try prepareCaches(shouldStop: shouldStop, events: events)
        } catch is StopRequested {
            cachingStopped = true
        }
        // The ranks wait for each other's latents here (and agree on a stop).
        if try agreeToStop(cachingStopped) {
            // Nothing of the run has changed yet, so the saved state (if any) stands; each cached latent is its own file.
            events(.message("stopped while caching latents; those cached so far are kept in \(latents.directory.path)"))
            return summary(interrupted: true)
        }
        let started = Date()
        heartbeat?.trainingStarted = started
        let secondsBefore = state.seconds
        let total = config.training.maxSteps

        var interrupted = false
        // Set when a stop cut an evaluation short: its state is saved already, with the evaluation pending.
        var evaluationStopped = false
        if !resumed {
            evaluationStopped = try !evaluateOrDefer(log: log, shouldStop: shouldStop, events: events)
        } else if let pending = state.pendingEvaluation {
            evaluationStopped = try !evaluateOrDefer(log: log, shouldStop: shouldStop, events: events,
                                                     trainLoss: pending.trainLoss, gradNorm: pending.gradNorm)
        }
        if try agreeToStop(evaluationStopped) {
            if evaluationStopped { return try stoppedInEvaluation() }
            interrupted = true
        }
        heartbeat?.origin = (state.step, Date())
        while !interrupted && state.step < total {
            // Every rank stops after the same step, whichever saw the request.
            if try agreeToStop(shouldStop()) {
                interrupted = true
                break
            }
            let (loss, gradNorm) = try stepSavingOnOutOfMemory()
            state.seconds = secondsBefore + Date().timeIntervalSince(started)
            heartbeat?.beat(step: state.step)
            let lr = learningRate(forStep: state.step)
            if let loss {
                state.smoothedLoss = state.smoothedLoss.map { 0.9 * $0 + 0.1 * loss } ?? loss
            }
            let evaluating = validationDue(state.step) || samplesDue(state.step)
            if !evaluating {
                try log?.append(TrainingLogRow(step: state.step, epoch: state.epoch, trainLoss: loss, smoothedLoss: state.smoothedLoss,
                                              learningRate: lr, gradNorm: gradNorm, nonFinite: state.nonFiniteTotal))
            }
            events(.step(step: state.step, total: total, loss: loss ?? .nan, smoothed: state.smoothedLoss ?? .nan, learningRate: lr))
            if evaluating {
                let completed = try evaluateOrDefer(log: log, shouldStop: shouldStop, events: events, trainLoss: loss, gradNorm: gradNorm)
                if try agreeToStop(!completed) {
                    if !completed { return try stoppedInEvaluation() }
                    interrupted = true
                }
            }
        }
        if interrupted {
            try saveState()
            events(.message("stopped at step \(state.step); the state is saved in \(run.state.path)"))
        } else {
            try saveLoRA(to: run.final, step: state.step)
            events(.checkpoint(run.final))
        }
        // The other ranks leave once rank 0's files are written: a launcher that sees them all exit finds the run complete.
        try dataParallel?.barrier()
        return summary(interrupted: interrupted)
    }

    /// Sets `state.cpuThreads`, the count this session trains with and records: the held one for a new run; for a
    /// resumed one, what `CPUPacing.resumeCount` makes of the recorded count (said either way). Data-parallel ranks
    /// that did not get a count from the user take rank 0's, so that every rank computes alike.
    private func holdThreads(resumed: Bool, held: Int, events: (TrainingEvent) -> Void) throws {
        let source = CPUPacing.source
        var threads = held, message = CPUPacing.heldMessage(threads: held, source: source)
        if resumed {
            let decision = CPUPacing.resumeCount(recorded: state.cpuThreads, source: source, current: held)
            threads = decision.threads
            message = decision.message
        }
        if let dataParallel, !(source?.isUsers ?? false) {
            threads = Int(try dataParallel.reduce([dataParallel.rank == 0 ? Double(threads) : 0], .sum)[0])
        }
        if threads != held { CPUPacing.hold(threads: threads) }
        state.cpuThreads = threads
        events(.message(message))
    }

    /// The end of a session whose evaluation a stop cut short (its state saved, with the evaluation pending): the other
    /// ranks, which stop after the same step, are met at the final barrier.
    private func stoppedInEvaluation() throws -> TrainingSummary {
        try dataParallel?.barrier()
        return summary(interrupted: true)
    }

    /// Whether to stop now: `stop` itself in one process; any rank's `stop` in a data-parallel run (a collective:
    /// every rank calls it at the same points).
    private func agreeToStop(_ stop: Bool) throws -> Bool {
        guard let dataParallel else { return stop }
        return try dataParallel.anyRank(stop)
    }

    private func summary(interrupted: Bool) -> TrainingSummary {
        let seconds = state.seconds
        return TrainingSummary(steps: state.step, bestStep: state.bestStep, bestValidationLoss: state.bestValidationLoss,
                               finalValidationLoss: state.lastValidationLoss, nonFiniteSteps: state.nonFiniteTotal,
                               seconds: seconds, stepsPerSecond: seconds > 0 ? Double(state.step) / seconds : 0,
                               interrupted: interrupted)
    }

    /// `evaluate` of the current step, then the state saved. A stop request during it saves the state with the
    /// evaluation marked pending, which `--resume` redoes first (its files are rewritten whole, its log row
    /// written once): returns false then. Validation and checkpoints are deterministic and use no training
    /// generator, so redoing them changes nothing the uninterrupted run would have.
    private func evaluateOrDefer(log: TrainingLog?, shouldStop: () -> Bool, events: (TrainingEvent) -> Void,
                                 trainLoss: Double? = nil, gradNorm: Double? = nil) throws -> Bool {
        do {
            try evaluate(log: log, events: events, trainLoss: trainLoss, gradNorm: gradNorm, shouldStop: shouldStop)
            state.pendingEvaluation = nil
            try saveState()
            return true
        } catch is StopRequested {
            state.pendingEvaluation = .init(trainLoss: trainLoss, gradNorm: gradNorm)
            try saveState()
            events(.message("stopped during step \(state.step)'s validation and samples; the state is saved in "
                + "\(run.state.path), and --resume redoes them"))
            return false
        }
    }

    /// `optimizerStep()`, except that running out of memory rewinds what the step drew (data position,
    /// generators), saves the state as of the last completed step and rethrows: `--resume` (with a smaller
    /// batch, say) then continues exactly where the run stood.
    func stepSavingOnOutOfMemory() throws -> (Double?, Double?) {
        let before = (step: state.step, epoch: state.epoch, position: state.position, rng: try rng.state(),
                      dropout: try dropoutRNG.state(), scaler: scaler)
        do {
            return try optimizerStep()
        } catch TorchError.outOfMemory(let message) {
            try optimizer.zeroGrad()
            state.step = before.step
            state.epoch = before.epoch
            state.position = before.position
            try rng.setState(before.rng)
            try dropoutRNG.setState(before.dropout)
            scaler = before.scaler
            try saveState()
            throw TorchError.outOfMemory(message)
        }
    }

    /// What a run stopped for diverging tells the user.
    var divergenceHint: String {
        "the last good state is in \(run.state.path) (lower the learning rate, or use bf16 instead of fp16)"
    }

    /// One optimizer step over `gradient_accumulation` micro-batches. Returns the mean loss (nil when
    /// it was not finite and the step was skipped) and the gradient norm before clipping (nil when no step was
    /// taken: a non-finite loss, or an fp16 overflow the loss scaler skips).
    func optimizerStep() throws -> (Double?, Double?) {
        let batches = try (0..<config.training.gradientAccumulation).map { _ in try microBatch(try nextMicroBatchIndices()) }
        guard let dataParallel else { return try optimizerStep(batches) }
        return try optimizerStep(shares: try batches.map { try share(of: $0, dataParallel) })
    }

    /// The optimizer step for given micro-batches (gradients accumulated over them).
    func optimizerStep(_ batches: [MicroBatch]) throws -> (Double?, Double?) {
        try optimizerStep(shares: batches.map { ($0, 1) })
    }

    /// The optimizer step for this rank's shares of the micro-batches, each loss scaled by its weight (1 in one
    /// process); in a data-parallel run the gradients and the loss are then averaged over the ranks.
    private func optimizerStep(shares: [(batch: MicroBatch?, weight: Double)]) throws -> (Double?, Double?) {
        network.isTraining = true
        defer { network.isTraining = false }
        let accumulation = shares.count
        var total = 0.0
        var finite = true
        for (batch, weight) in shares {
            // Per micro-batch: a large accumulation on a CPU can take longer than a dashboard waits.
            heartbeat?.beat()
            try faultInjection?(.microBatch)
            guard let batch else { continue }
            var loss = try diffusionLoss(batch)
            if weight != 1 { loss = try loss * weight }
            let value = try loss.item()
            if !value.isFinite { finite = false }
            total += value
            let share = try loss / Double(accumulation)
            try (scaler.map { try $0.scaled(share) } ?? share).backward()
        }
        let parameters = optimizer.parameters
        if let dataParallel {
            if shares.allSatisfy({ $0.batch == nil }) {
                // No rows here this step: zero gradients, so this rank's optimizer steps with the others'.
                var zero = try parameters[0].sum() * 0.0
                for p in parameters.dropFirst() { zero = try zero + p.sum() * 0.0 }
                try zero.backward()
            }
            try dataParallel.averageGradients(parameters)
            // One rank's non-finite loss makes the mean non-finite: every rank skips the step together.
            total = try dataParallel.reduce([total], .average)[0]
            finite = total.isFinite
            if config.lora.dropout > 0 { try dataParallel.synchronize(dropoutRNG) }
        }
        var overflow = false
        if var scaler {
            // torch.amp.GradScaler: unscale before clipping; an inf/NaN gradient (fp16 overflow, or a
            // non-finite loss) skips the step and lowers the scale.
            overflow = try scaler.unscale(parameters)
            try scaler.update(foundInf: overflow)
            self.scaler = scaler
        }
        state.step += 1
        guard finite else {
            try optimizer.zeroGrad()
            state.nonFiniteTotal += 1
            state.nonFiniteStreak += 1
            if state.nonFiniteStreak >= config.training.maxNonFiniteLosses {
                throw TrainingStopped(reason: "\(state.nonFiniteStreak) non-finite losses in a row at step \(state.step); "
                    + divergenceHint)
            }
            return (nil, nil)
        }
        if overflow, let scaler {
            // A finite loss whose fp16 gradients overflowed: the scaler's normal search for its scale (a few
            // skipped steps at the start), unless the scale has fallen so far that the gradients are broken.
            try optimizer.zeroGrad()
            if scaler.scale < 1 {
                throw TrainingStopped(reason: "fp16 gradients overflow even at loss scale \(scaler.scale) at step \(state.step); "
                    + divergenceHint)
            }
            return (total / Double(accumulation), nil)
        }
        state.nonFiniteStreak = 0
        var norm: Double?
        if config.training.maxGradNorm > 0 {
            norm = try clipGradNorm(parameters, maxNorm: config.training.maxGradNorm)
        }
        try optimizer.setLearningRates(schedule: schedule, step: state.step - 1)
        try optimizer.step()
        try optimizer.zeroGrad()
        return (total / Double(accumulation), norm)
    }

    // MARK: Evaluation

    /// Validation loss, samples (and CLIP score), LoRA checkpoint, log row.
    /// `shouldStop` is polled inside it (throws `StopRequested`), and the log row is written last: a stopped
    /// evaluation leaves no row.
    func evaluate(log: TrainingLog?, events: (TrainingEvent) -> Void, trainLoss: Double? = nil, gradNorm: Double? = nil,
                  shouldStop: () -> Bool = { false }) throws {
        let step = state.step
        let validating = validationDue(step)
        var measured: Double?
        if validating && !validation.isEmpty {
            // Split over the ranks, which all reach its all-reduce: a stop waits for the step's end there.
            let loss = try validationLoss(shouldStop: dataParallel == nil ? shouldStop : { false })
            measured = loss
            state.lastValidationLoss = loss
            let isBest = step > 0 && loss.isFinite && (state.bestValidationLoss.map { loss < $0 } ?? true)
            if isBest {
                state.bestValidationLoss = loss
                state.bestStep = step
                try saveLoRA(to: run.best, step: step)
            }
            events(.validation(step: step, loss: loss, isBest: isBest))
        }
        // The checkpoint comes before the samples, so running out of memory while sampling loses no weights.
        if step > 0 && validating {
            let url = run.checkpoint(step: step)
            try saveLoRA(to: url, step: step)
            try pruneCheckpoints()
            events(.checkpoint(url))
        }
        var clipScore: Double?
        if samplesDue(step) && writesFiles {
            do {
                try faultInjection?(.samples)
                let (folder, images) = try renderSamples(step: step, shouldStop: shouldStop)
                events(.samples(step: step, folder: folder))
                try StopRequested.check(shouldStop)
                if let clipScorer {
                    clipScore = try clipScorer(images.map(\.0), images.map(\.1))
                }
            } catch TorchError.outOfMemory(let message) {
                // Samples are a by-product: training goes on (their memory is freed with their tensors).
                events(.message("step \(step): samples skipped, out of memory (\(message)); lower samples.size or "
                    + "the number of prompts"))
            }
        }
        try log?.append(TrainingLogRow(step: step, epoch: state.epoch, trainLoss: trainLoss, smoothedLoss: state.smoothedLoss,
                                      validationLoss: measured, clipScore: clipScore,
                                      learningRate: learningRate(forStep: step), gradNorm: gradNorm,
                                      nonFinite: state.nonFiniteTotal))
    }

    /// Validation loss and a checkpoint: at step 0 (the base model), every `validation.every` steps and at the end.
    func validationDue(_ step: Int) -> Bool {
        let every = config.validation.every
        return step == 0 || (every > 0 && step % every == 0) || step == config.training.maxSteps
    }

    /// Samples: at step 0, every `samples.every` steps and at the end, whatever the validation cadence.
    func samplesDue(_ step: Int) -> Bool {
        let every = config.samples.every
        return every > 0 && (step % every == 0 || step == config.training.maxSteps)
    }

    /// The (UNet) learning rate of optimizer step `step` (1-based: the schedule's step `step - 1`), what the log
    /// shows at that step; step 0, before any update, shows the rate the first step will use, so a warmup
    /// starts from 0 in the chart instead of a spike at the peak.
    func learningRate(forStep step: Int) -> Double {
        schedule.lr(step: max(0, step - 1), baseLR: config.optimizer.learningRate)
    }

    /// Mean denoising loss on the validation images with fixed noise and fixed timesteps spread over
    /// the schedule (the distribution's mean as latent): the same number for the same weights,
    /// whatever the training RNG has done, so it compares across steps, runs and caption variants. In a
    /// data-parallel run each rank measures every world-size-th image and the sums are reduced.
    public func validationLoss(shouldStop: () -> Bool = { false }) throws -> Double {
        let k = config.validation.timestepsPerImage
        let timesteps = (0..<k).map { Int((Double($0) + 0.5) * Double(noise.numTrainTimesteps) / Double(k)) }
        var sum = 0.0
        try noGrad {
            for (i, example) in validation.enumerated() {
                if let dataParallel, i % dataParallel.worldSize != dataParallel.rank { continue }
                try StopRequested.check(shouldStop)
                heartbeat?.beat()
                let g = try Generator(seed: UInt64(config.validation.seed) &+ UInt64(i))
                let mean = try latents.moments(example.image, flipped: false, device: pipeline.device).mean
                let x0 = try mean.expand([k] + Array(mean.shape.dropFirst())).contiguous() * pipeline.vae.scalingFactor
                let n = try randnTensor(x0.shape, generator: g, device: pipeline.device)
                let t = try Tensor(timesteps.map(Int64.init)).to(pipeline.device)
                let (context, ids) = try context(for: Array(repeating: example.caption, count: k))
                let loss = try diffusionLoss(MicroBatch(latents: x0, noise: n, timesteps: t, context: context, inputIds: ids))
                sum += try loss.item()
            }
        }
        if let dataParallel { sum = try dataParallel.reduce([sum], .sum)[0] }
        return sum / Double(validation.count)
    }

    /// Samples from the fixed prompts and seeds into samples/step_N/ (at step 0 with the adapters
    /// off: the base model's images). A stop request ends it within a denoising step and removes the folder:
    /// half a step's samples are never shown as its samples.
    func renderSamples(step: Int, shouldStop: () -> Bool = { false }) throws -> (URL, [(Image, String)]) {
        let folder = run.samples(step: step)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        do {
            // The pipeline's progress callback is optional, hence escaping; it does not outlive the call.
            return (folder, try withoutActuallyEscaping(shouldStop) { try renderSamples(step: step, into: folder, shouldStop: $0) })
        } catch is StopRequested {
            try? FileManager.default.removeItem(at: folder)
            throw StopRequested()
        }
    }

    private func renderSamples(step: Int, into folder: URL, shouldStop: @escaping () -> Bool) throws -> [(Image, String)] {
        let s = config.samples
        network.isEnabled = step > 0
        defer { network.isEnabled = true }
        let sampler = s.sampler
        var out: [(Image, String)] = []
        for (p, prompt) in s.prompts.enumerated() {
            for seed in s.seeds {
                var options = GenerationOptions(prompt: prompt)
                options.negativePrompt = s.negativePrompt
                options.steps = s.steps
                options.guidanceScale = s.guidance
                options.width = s.size
                options.height = s.size
                options.seed = UInt64(seed)
                options.use(sampler)
                var job = TextToImageJob(options: options, sampler: sampler, outputDirectory: folder)
                job.modelName = config.output.name
                // A beat per denoising step: a 512 px sample on a CPU takes longer than a dashboard waits.
                let image = try Image.batch(try pipeline(options, progress: { [self] _, _ in heartbeat?.beat(); return !shouldStop() }),
                                            range: .unit)
                guard let first = image.first else { continue }
                let info = job.info(index: 0, defaultSampler: sampler)
                try first.writePNG(to: run.sample(step: step, SampleName(prompt: p, seed: seed)),
                                   text: [PNGTextChunk(keyword: "parameters", text: info.text)])
                out.append((first, prompt))
            }
        }
        return out
    }

}
