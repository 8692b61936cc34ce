// inkwell-bench: times representative work in Inkwell and prints one JSON object per case.
// benchmarks/bench.py runs the same cases in PyTorch in the same run and prints the ratios.
import Foundation
import LoRA
import StableDiffusion
import Torch

/// How long a case is timed: `warmup` untimed calls, then at least `calls` calls and `seconds` seconds.
struct Timing {
    var warmup = 3, calls = 5
    var seconds = 1.0
}

/// The process's peak resident size in bytes (VmHWM), which `resetPeakMemory` restarts from the current
/// size: on the CPU the memory a case needs, model included, as bench.py measures its own process.
func peakResidentBytes() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
    return kb * 1024
}

func residentBytes() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
    return kb * 1024
}

func resetPeakMemory(_ device: Device) throws {
    if case .cuda = device { return try device.resetPeakMemory() }
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
}

/// On the CPU, what the process holds once a step's temporaries are freed (model, adapters, optimizer state,
/// caches; the host cache's free blocks handed back, as bench.py trims its heap): the step's own peak is
/// measured above it. nil on a GPU.
func heldBetweenSteps(_ device: Device) -> Int? {
    if case .cuda = device { return nil }
    HostMemory.releaseCached()
    return residentBytes()
}

/// Peak memory while a case ran: on a GPU the most its tensors held (torch.cuda.max_memory_allocated).
func peakMemory(_ device: Device) throws -> Int? {
    if case .cuda = device { return try device.peakAllocatedBytes() }
    return peakResidentBytes()
}

/// Median seconds per call of `body` after warm-up (the median, so one call disturbed by other work on
/// the machine does not move the result).
func measure(_ body: () throws -> Void, device: Device, timing: Timing) throws -> (seconds: Double, baseline: Int?, liveStep: Int?) {
    try resetPeakMemory(device)
    HostMemory.resetWindowPeak()
    for _ in 0..<timing.warmup { try body() }
    try device.synchronize()
    var samples: [Double] = []
    let start = Date()
    while samples.count < timing.calls || Date().timeIntervalSince(start) < timing.seconds {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        try device.synchronize()
        samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        if samples.count >= 1000 { break }
    }
    let sorted = samples.sorted(), n = sorted.count
    // On the CPU, the step's peak in live tensor bytes above what stays live between steps (the host cache's
    // blocks of 1 MiB and more): the counterpart of a GPU's max_memory_allocated, without the cache's slack.
    let memory = HostMemory.statistics
    let liveStep = device == .cpu && HostMemory.isCaching ? memory.windowPeakLiveBytes - memory.liveBytes : nil
    return (n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2, heldBetweenSteps(device), liveStep)
}

struct Case {
    let name: String
    /// A LoRA training row (`--train-only` keeps just these).
    let training: Bool
    let setup: (Device) throws -> () throws -> Void

    init(name: String, training: Bool = false, setup: @escaping (Device) throws -> () throws -> Void) {
        self.name = name
        self.training = training
        self.setup = setup
    }
}

let cases: [Case] = [
    Case(name: "matmul 512x512x512") { d in
        let a = try Tensor.randn([512, 512], device: d), b = try Tensor.randn([512, 512], device: d)
        return { _ = try a.matmul(b) }
    },
    Case(name: "conv2d 3x3 64->64 @64x64") { d in
        let x = try Tensor.randn([1, 64, 64, 64], device: d), w = try Tensor.randn([64, 64, 3, 3], device: d)
        return { _ = try F.conv2d(x, weight: w, padding: 1) }
    },
    Case(name: "group_norm 32 groups [1,320,32,32]") { d in
        let x = try Tensor.randn([1, 320, 32, 32], device: d)
        let w = try Tensor.ones([320], device: d), b = try Tensor.zeros([320], device: d)
        return { _ = try F.groupNorm(x, groups: 32, weight: w, bias: b) }
    },
    Case(name: "sdpa [1,8,1024,40]") { d in
        let q = try Tensor.randn([1, 8, 1024, 40], device: d)
        return { _ = try F.scaledDotProductAttention(q, q, q) }
    },
    Case(name: "elementwise chain (silu(x)*y+1) [1M]") { d in
        let x = try Tensor.randn([1 << 20], device: d), y = try Tensor.randn([1 << 20], device: d)
        return { _ = try x.silu() * y + 1 }
    },
    Case(name: "MLP train step 512-1024-512 b64 AdamW") { d in
        let vs = VarStore(device: d, generator: try Generator(seed: 0))
        let l1 = try Linear(vs.root / "l1", inFeatures: 512, outFeatures: 1024)
        let l2 = try Linear(vs.root / "l2", inFeatures: 1024, outFeatures: 512)
        try vs.setTrainable { _ in true }
        let optimizer = try AdamW(parameters: vs.trainable, lr: 1e-3)
        let x = try Tensor.randn([64, 512], device: d), y = try Tensor.randn([64, 512], device: d)
        return {
            let loss = try F.mseLoss(try l2(try l1(x).gelu()), y)
            try loss.backward()
            try optimizer.step()
            try optimizer.zeroGrad()
        }
    },
    Case(name: "small ops x100 (host overhead)") { d in
        let x = try Tensor.randn([8, 8], device: d)
        return { for _ in 0..<100 { _ = try x + x } }
    },
]

/// Model-level cases on a diffusers folder at `size` pixels with `batch` images: one UNet step (CFG: twice
/// the batch), a LoRA training step with and without cached latents, a VAE decode and a whole generation.
/// `dtype` is the frozen weights' (training keeps the VAE and the adapters in float32, as `inkwell train`
/// does under mixed precision). Every case loads its own pipeline, so adapters added by one never run in
/// another.
func modelCases(folder: String, size: Int, steps: Int, batch: Int, dtype: DType) -> [Case] {
    /// The VAE in `dtype` too unless told (diffusers' SD1.5 pipeline does not upcast it: equal work).
    func load(_ d: Device, vaeDType: DType? = nil) throws -> StableDiffusionPipeline {
        try StableDiffusionPipeline.load(.diffusersFolder(URL(fileURLWithPath: folder)), device: d, dtype: dtype,
                                         vaeDType: vaeDType ?? dtype)
    }
    /// One step of diffusers' train_text_to_image_lora.py loop (one timestep) done with the public APIs
    /// Inkwell's trainer uses: x₀ sampled from the VAE posterior × scaling factor, DDPM add_noise at
    /// t = 500 in float32, the UNet in `dtype`, ε-prediction MSE in float32, backward into float32 rank-16
    /// adapters on to_q/to_k/to_v/to_out.0, fused AdamW. `cached`: the posterior's moments and the prompt's
    /// embeddings are computed once, as the trainer's latent and text caches do; otherwise every step runs
    /// the frozen VAE encoder and text encoder (without autograd), as the diffusers script does.
    /// `checkpointing`: the UNet's gradient checkpointing (`training.gradient_checkpointing`), with cached latents.
    func trainStep(cached: Bool, checkpointing: Bool = false) -> Case {
        let variant = checkpointing ? "cached, checkpointing" : cached ? "cached latents" : "no cache"
        return Case(name: "lora train step, \(variant) \(size)px", training: true) { d in
            let pipe = try load(d, vaeDType: .float32)
            try pipe.vae.store.freezeAll()
            try pipe.textEncoder.store.freezeAll()
            let network = LoRANetwork(device: d, generator: try Generator(seed: 0))
            try network.addAdapters(to: pipe.unet.store, component: .unet, config: LoRAConfig(rank: 16, alpha: 16))
            network.isTraining = true
            if checkpointing { pipe.unet.gradientCheckpointing = GradientCheckpointing() }
            let optimizer = try AdamW(groups: network.parameterGroups(unetLR: 1e-4))
            var ddpm = pipe.schedulerConfig
            ddpm.className = SchedulerKind.ddpm.rawValue
            let scheduler = try DDPMScheduler(config: ddpm)
            let g = try Generator(seed: 0)
            let image = try (Tensor.rand([batch, 3, size, size], generator: g) * 2 - 1).to(d)
            let ids = try pipe.tokenizer.inputIds(Array(repeating: "a tattoo", count: batch)).to(d)
            let t = try Tensor(Array(repeating: Int64(500), count: batch)).to(d)
            let scale = pipe.vae.scalingFactor
            let posterior = try noGrad { try pipe.vae.encode(image) }
            let embeddings = try noGrad { try pipe.textEncoder(ids).lastHiddenState }
            return {
                let (x0, context) = try noGrad { () throws -> (Tensor, Tensor) in
                    if cached { return (try posterior.sample(generator: g) * scale, embeddings) }
                    return (try pipe.vae.encode(image).sample(generator: g) * scale, try pipe.textEncoder(ids).lastHiddenState)
                }
                let noise = try Tensor.randn(x0.shape, generator: g).to(d)
                let noisy = try scheduler.addNoise(x0, noise: noise, timesteps: t)
                let prediction = try pipe.unet(noisy.to(dtype), timestep: t, encoderHiddenStates: context.to(dtype))
                let loss = try F.mseLoss(prediction.to(.float32), noise)
                try loss.backward()
                try optimizer.step()
                try optimizer.zeroGrad()
            }
        }
    }
    return [
        Case(name: "unet step \(size)px") { d in
            let pipe = try load(d)
            let f = pipe.vaeScaleFactor
            let x = try Tensor.randn([2 * batch, pipe.unet.config.inChannels, size / f, size / f], device: d).to(dtype)
            let ids = try pipe.tokenizer.inputIds(Array(repeating: "a tattoo", count: batch) + Array(repeating: "", count: batch)).to(d)
            let context = try noGrad { try pipe.textEncoder(ids).lastHiddenState }
            return { _ = try noGrad { try pipe.unet(x, timestep: 500, encoderHiddenStates: context) } }
        },
        trainStep(cached: true),
        trainStep(cached: false),
        trainStep(cached: true, checkpointing: true),
        Case(name: "vae decode \(size)px") { d in
            let pipe = try load(d)
            let f = pipe.vaeScaleFactor
            let z = try Tensor.randn([batch, pipe.vae.config.latentChannels, size / f, size / f], device: d).to(dtype)
            return { _ = try pipe.decode(z) }
        },
        Case(name: "generate \(steps) steps \(size)px") { d in
            let pipe = try load(d)
            var o = GenerationOptions(prompt: "minimal line-art tattoo of a rose")
            o.steps = steps
            o.width = size
            o.height = size
            o.scheduler = .dpmSolverMultistep
            o.batch = batch
            return { _ = try pipe(o) }
        },
    ]
}

/// One result line: a JSON object bench.py reads (serialized properly: error texts may hold quotes),
/// written unbuffered so every finished case reaches bench.py even if a later one crashes the process.
func emit(_ fields: [String: Any]) {
    let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data("{}".utf8)
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

// usage: inkwell-bench [--cuda] [--threads N (default: automatic, as inkwell)] [--case NAME] [--warmup N] [--calls N] [--seconds S]
//                      [--model FOLDER [--size PX] [--steps N] [--batch N] [--dtype fp32|bf16|fp16] [--train-only]]
let args = CommandLine.arguments
let option = { (name: String) -> String? in args.firstIndex(of: name).flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil } }
let device: Device = args.contains("--cuda") ? .cuda(0) : .cpu
// As `inkwell` does: --threads, else INKWELL_THREADS / OMP_NUM_THREADS, else the automatic choice (bench-load).
do {
    try CPUPacing.start(flag: option("--threads").flatMap(Int.init))
} catch {
    FileHandle.standardError.write(Data("inkwell-bench: \(error)\n".utf8))
    exit(2)
}
let only = option("--case")

var selected = cases
// Model cases run longer (a 3 s window) than ops: they are fewer calls, so a noisy call weighs more.
var timing = Timing()
if let folder = option("--model") {
    let dtypes: [String: DType] = ["fp32": .float32, "bf16": .bfloat16, "fp16": .float16]
    guard let dtype = dtypes[option("--dtype") ?? "fp32"] else {
        FileHandle.standardError.write(Data("inkwell-bench: --dtype must be fp32, bf16 or fp16\n".utf8))
        exit(2)
    }
    selected = modelCases(folder: folder, size: option("--size").flatMap(Int.init) ?? 64,
                          steps: option("--steps").flatMap(Int.init) ?? 20,
                          batch: option("--batch").flatMap(Int.init) ?? 1, dtype: dtype)
    if args.contains("--train-only") { selected = selected.filter(\.training) }
    timing.seconds = 3
}
if let n = option("--warmup").flatMap(Int.init) { timing.warmup = n }
if let n = option("--calls").flatMap(Int.init) { timing.calls = n }
if let s = option("--seconds").flatMap(Double.init) { timing.seconds = s }

for c in selected where only == nil || c.name == only {
    // The last case's pipeline is gone: its cached blocks must not count in this case's peak.
    HostMemory.releaseCached()
    do {
        let run = try c.setup(device)
        let (seconds, baseline, liveStep) = try measure(run, device: device, timing: timing)
        emit(["name": c.name, "seconds": seconds, "threads": Threads.count, "peak_bytes": try peakMemory(device) ?? NSNull(),
              "baseline_bytes": baseline ?? NSNull(), "live_step_bytes": liveStep ?? NSNull()])
    } catch {
        emit(["name": c.name, "error": "\(error)"])
    }
}
