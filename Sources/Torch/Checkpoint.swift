// Gradient checkpointing, as torch.utils.checkpoint.checkpoint: a block's activations are not kept for backward;
// backward runs the block again and back-propagates through that recomputation (CTorch's checkpoint.cpp).
import CTorch

/// A module's `gradient_checkpointing` setting (diffusers' `enable_gradient_checkpointing()`), with the
/// generators whose draws the recomputation must replay (LoRA dropout's, when it has its own) besides the
/// default generators, which are always replayed.
public struct GradientCheckpointing {
    public var generators: [Generator]
    /// How often the modules sharing this setting ran checkpointed, and were recomputed in backward.
    public let counts = Counts()

    public final class Counts {
        public internal(set) var checkpointed = 0
        public internal(set) var recomputed = 0
    }

    public init(preservingRNGOf generators: [Generator] = []) { self.generators = generators }
}

/// `body(inputs)` through `checkpoint` when `setting` is on and grad is enabled (diffusers'
/// `torch.is_grad_enabled() and self.gradient_checkpointing`), a plain call otherwise.
public func checkpointed(_ setting: GradientCheckpointing?, _ inputs: [Tensor],
                         _ body: @escaping ([Tensor]) throws -> Tensor) throws -> Tensor {
    guard let setting, isGradEnabled else { return try body(inputs) }
    let counts = setting.counts
    counts.checkpointed += 1
    var first = true
    return try checkpoint(inputs, preservingRNGOf: setting.generators) { inputs in
        if first { first = false } else { counts.recomputed += 1 }
        return try body(inputs)
    }
}

/// `torch.utils.checkpoint.checkpoint(body, *inputs)`: runs `body` without recording its graph; the backward
/// pass runs it again, with grad enabled on detached copies of `inputs`, and back-propagates through that:
/// parameters used inside accumulate their gradients there, the inputs' gradients flow on to the outer graph.
///
/// Every tensor whose gradient matters must come in through `inputs` (a captured tensor that requires grad
/// would get none). As torch's `preserve_rng_state`, the recomputation replays the random draws of the first
/// run: the CPU default generator, those of the inputs' other devices and `generators` are set back to their
/// states at this call, then restored. An error `body` throws in the recomputation is thrown by `backward()`.
public func checkpoint(_ inputs: [Tensor], preservingRNGOf generators: [Generator] = [],
                       _ body: @escaping ([Tensor]) throws -> Tensor) throws -> Tensor {
    guard isGradEnabled else { return try body(inputs) }
    var replayed = [try Generator.defaultGenerator(.cpu)]
    for device in Set(inputs.map(\.device)) where device != .cpu {
        replayed.append(try Generator.defaultGenerator(device))
    }
    replayed += generators
    let box = CheckpointBody(body, generators: replayed, states: try replayed.map { try $0.state() })
    let context = Unmanaged.passRetained(box).toOpaque()
    do {
        // ct_checkpoint owns the retained box from here on, and releases it in every case.
        return try produce { out in
            inputs.map { Optional($0.handle) }.withUnsafeBufferPointer {
                ct_checkpoint(checkpointTrampoline, context, checkpointRelease, $0.baseAddress, Int64(inputs.count), out)
            }
        }
    } catch {
        // The first run's own error, as thrown (not flattened through the C boundary).
        throw box.firstRunError ?? error
    }
}

private final class CheckpointBody {
    let body: ([Tensor]) throws -> Tensor
    let generators: [Generator]
    /// The generators' states before the first run.
    let states: [Tensor]
    var runs = 0
    var firstRunError: Error?

    init(_ body: @escaping ([Tensor]) throws -> Tensor, generators: [Generator], states: [Tensor]) {
        self.body = body
        self.generators = generators
        self.states = states
    }

    func run(_ inputs: [Tensor]) throws -> Tensor {
        runs += 1
        guard runs > 1 else { return try body(inputs) }
        // Recomputation: replay the first run's draws, then put the generators back where backward found them.
        let current = try generators.map { try $0.state() }
        for (generator, state) in zip(generators, states) { try generator.setState(state) }
        defer { for (generator, state) in zip(generators, current) { try? generator.setState(state) } }
        return try body(inputs)
    }
}

private func checkpointTrampoline(_ context: UnsafeMutableRawPointer?, _ inputs: UnsafePointer<ct_tensor?>?, _ n: Int64,
                                  _ out: UnsafeMutablePointer<ct_tensor?>?) -> UnsafeMutablePointer<ct_error>? {
    guard let context, let out else { return ct_error_new(Int32(CT_ERR_UNKNOWN.rawValue), "checkpoint: no context") }
    let box = Unmanaged<CheckpointBody>.fromOpaque(context).takeUnretainedValue()
    do {
        // The handles are borrowed: each Tensor takes a handle of its own.
        let tensors = (0..<Int(n)).compactMap { i in inputs?[i].map { Tensor(handle: ct_tensor_share($0)) } }
        let y = try box.run(tensors)
        out.pointee = ct_tensor_share(y.handle)
        return nil
    } catch {
        if box.runs == 1 { box.firstRunError = error }
        let code: ct_error_code
        switch error as? TorchError {
        case .outOfMemory?: code = CT_ERR_OUT_OF_MEMORY
        case .torch?: code = CT_ERR_TORCH
        default: code = CT_ERR_STD
        }
        let message: String
        switch error as? TorchError {
        case .outOfMemory(let m)?, .torch(let m)?, .other(let m)?, .invalidArgument(let m)?: message = m
        case nil: message = "\(error)"
        }
        return ct_error_new(Int32(code.rawValue), message)
    }
}

private func checkpointRelease(_ context: UnsafeMutableRawPointer?) {
    guard let context else { return }
    Unmanaged<CheckpointBody>.fromOpaque(context).release()
}
