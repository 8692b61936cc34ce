// inkwell-bench: times representative work in Inkwell and prints one JSON object per case.
// benchmarks/bench.py runs the same cases in PyTorch in the same run and prints the ratios.
import Foundation
import LoRA
import StableDiffusion
import Torch

/// Median seconds per call of `body` after warm-up, over at least `minSeconds` or 5 calls.
func measure(_ body: () throws -> Void, device: Device, minSeconds: Double = 1.0) throws -> Double {
    for _ in 0..<3 { try body() }
    try device.synchronize()
    var samples: [Double] = []
    let start = Date()
    while samples.count < 5 || Date().timeIntervalSince(start) < minSeconds {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        try device.synchronize()
        samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        if samples.count >= 1000 { break }
    }
    return samples.sorted()[samples.count / 2]
}

struct Case {
    let name: String
    let setup: (Device) throws -> () throws -> Void
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

/// Model-level cases on a diffusers folder: one UNet step (CFG batch of 2), a VAE decode, and a whole
/// generation, at `size` pixels.
func modelCases(folder: String, size: Int, steps: Int) -> [Case] {
    func load(_ d: Device) throws -> StableDiffusionPipeline {
        try StableDiffusionPipeline.load(.diffusersFolder(URL(fileURLWithPath: folder)), device: d, dtype: .float32)
    }
    return [
        Case(name: "unet step \(size)px") { d in
            let pipe = try load(d)
            let f = pipe.vaeScaleFactor
            let x = try Tensor.randn([2, pipe.unet.config.inChannels, size / f, size / f], device: d)
            let ids = try pipe.tokenizer.inputIds(["a tattoo", ""]).to(d)
            let context = try noGrad { try pipe.textEncoder(ids).lastHiddenState }
            return { _ = try noGrad { try pipe.unet(x, timestep: 500, encoderHiddenStates: context) } }
        },
        Case(name: "lora train step \(size)px") { d in
            let pipe = try load(d)
            let f = pipe.vaeScaleFactor
            let network = LoRANetwork(device: d, generator: try Generator(seed: 0))
            try network.addAdapters(to: pipe.unet.store, component: .unet, config: LoRAConfig(rank: 16, alpha: 16))
            let optimizer = try AdamW(groups: network.parameterGroups(unetLR: 1e-4))
            let latents = try Tensor.randn([1, pipe.unet.config.inChannels, size / f, size / f], device: d)
            let ids = try pipe.tokenizer.inputIds(["a tattoo"]).to(d)
            let context = try noGrad { try pipe.textEncoder(ids).lastHiddenState }
            let t = try Tensor([Int64(500)]).to(d)
            return {
                let loss = try F.mseLoss(try pipe.unet(latents, timestep: t, encoderHiddenStates: context), latents)
                try loss.backward()
                try optimizer.step()
                try optimizer.zeroGrad()
            }
        },
        Case(name: "vae decode \(size)px") { d in
            let pipe = try load(d)
            let f = pipe.vaeScaleFactor
            let z = try Tensor.randn([1, pipe.vae.config.latentChannels, size / f, size / f], device: d)
            return { _ = try pipe.decode(z) }
        },
        Case(name: "generate \(steps) steps \(size)px") { d in
            let pipe = try load(d)
            var o = GenerationOptions(prompt: "minimal line-art tattoo of a rose")
            o.steps = steps
            o.width = size
            o.height = size
            o.scheduler = .dpmSolverMultistep
            return { _ = try pipe(o) }
        },
    ]
}

let args = CommandLine.arguments
let device: Device = args.contains("--cuda") ? .cuda(0) : .cpu
if let i = args.firstIndex(of: "--threads"), i + 1 < args.count, let n = Int(args[i + 1]) { Threads.count = n }
let only = args.firstIndex(of: "--case").flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil }

var selected = cases
if let i = args.firstIndex(of: "--model"), i + 1 < args.count {
    let size = args.firstIndex(of: "--size").flatMap { $0 + 1 < args.count ? Int(args[$0 + 1]) : nil } ?? 64
    let steps = args.firstIndex(of: "--steps").flatMap { $0 + 1 < args.count ? Int(args[$0 + 1]) : nil } ?? 20
    selected = modelCases(folder: args[i + 1], size: size, steps: steps)
}

for c in selected where only == nil || c.name == only {
    do {
        let run = try c.setup(device)
        let seconds = try measure(run, device: device)
        print("{\"name\": \"\(c.name)\", \"seconds\": \(seconds)}")
    } catch {
        print("{\"name\": \"\(c.name)\", \"error\": \"\(error)\"}")
    }
}
