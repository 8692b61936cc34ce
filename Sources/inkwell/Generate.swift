// `inkwell generate`: text to image, img2img (--init-image) and inpainting (--mask) with a Stable Diffusion 1.x model.
import ArgumentParser
import AtomicFile
import Foundation
import Imaging
import LoRA
import StableDiffusion
import Stencil
import Torch
import Training

struct Generate: ParsableCommand, ComputingCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate images from a prompt; each PNG carries its parameters as A1111 writes them.")

    @Option(help: "A diffusers model folder, a single-file .safetensors checkpoint, or a Hub repo id (org/name[@revision], downloaded into the Hugging Face cache when missing).") var model: String
    @Option(help: "The prompt; <lora:NAME:SCALE> tags in it apply LoRAs as in A1111 (see --lora-dir).") var prompt: String
    @Option(name: .customLong("negative-prompt"), help: "What to steer away from.") var negativePrompt = ""
    @Option(help: "Denoising steps.") var steps = 30
    @Option(help: "Classifier-free guidance scale (A1111's CFG scale).") var guidance = 7.5
    @Option(parsing: .unconditional, help: "Random seed (images are reproducible from it); -1 picks one at random, printed and written into each PNG.")
    var seed: Int64 = 0
    @Option(help: "Image size: WxH, or one number for a square (512 is 512x512); multiples of 8. Default 512, or with --init-image that image's size rounded down to a multiple of 8 (the VAE's scale factor).")
    var size: String?
    @Option(name: .customLong("init-image"), help: "img2img: start from this image (PNG, JPEG or WebP), resized to --size when given.")
    var initImage: String?
    @Option(help: "img2img's denoising strength in (0, 1]: how much of the schedule runs (1 ignores the image; A1111's default 0.75).")
    var strength: Double?
    @Option(help: "Inpainting (with an SD1.x inpainting model): a mask over --init-image, white where it is repainted, black where it is kept.")
    var mask: String?
    @Option(name: [.customLong("sampler"), .customLong("scheduler")], help: .init(samplerHelp + " (default: the model's)."))
    var sampler: String?
    @Option(help: "Images to generate.") var batch = 1
    @Flag(name: .customLong("per-image-seeds"), help: "Image i of the batch gets seed + i, as in A1111, so any one can be made again alone with --seed (seed + i) --batch 1.")
    var perImageSeeds = false
    @Option(name: .customLong("clip-skip"), help: "A1111's Clip skip (1 = last layer, 2 = the one before).") var clipSkip = 1
    @Option(help: "Output folder.") var out = "outputs"
    @Option(help: "Device: cpu, cuda or cuda:N (default: the best available).") var device: String?
    @Option(help: "Weights dtype: fp32, fp16 or bf16 (default: fp16 on GPU, fp32 on CPU).") var dtype: String?
    @Option(help: "Weights variant of a diffusers folder, e.g. fp16.") var variant: String?
    @Option(help: "Tokenizer folder for a single-file checkpoint (default: tokenizer/ beside it).") var tokenizer: String?
    @Option(name: .customLong("lora"), help: "A LoRA file, optionally with a scale: FILE[:SCALE] (repeatable).")
    var loras: [String] = []
    @Option(name: .customLong("lora-dir"), help: "Where the prompt's <lora:NAME:SCALE> tags find NAME.safetensors (A1111's models/Lora).")
    var loraDirectory: String?
    @Flag(help: "Fuse the LoRAs into the weights (faster steps; the same images up to rounding).") var fuse = false
    @Flag(name: .customLong("no-hash"), help: "Skip hashing the model file for the Model hash field.") var noHash = false
    @Flag(name: .customLong("vae-tiling"), help: .init(vaeTilingHelp)) var vaeTiling = false
    @Flag(help: .init(offloadHelp)) var offload = false
    @Flag(help: "Also write each image's stencil beside it: NAME-stencil.png (1-bit, print size) and NAME-stencil.svg (see `inkwell stencil` for the flags below).")
    var stencil = false
    @OptionGroup(title: "Stencil (with --stencil)") var stencilOptions: StencilOptions

    @OptionGroup var cpu: CPUOptions

    func run() throws {
        let dims = try size.map(imageSize)
        let stencilSettings = stencil ? try stencilOptions.settings() : nil
        let start = try initImageAndStrength()
        let sampler = try self.sampler.map(parseSampler)
        let seed = try resolvedSeed(self.seed)
        guard clipSkip >= 1 else { throw ValidationError("--clip-skip must be 1 or more, got \(clipSkip)") }
        guard steps > 0, batch > 0 else { throw ValidationError("--steps and --batch must be positive") }
        guard guidance.isFinite else { throw ValidationError("--guidance must be a finite number, got \(guidance)") }
        let weightsType = try dtype.map { name -> DType in
            guard let t = DType(name: name), t.isFloatingPoint else { throw ValidationError("--dtype must be fp32, fp16 or bf16, got '\(name)'") }
            return t
        }
        // The size generated: --size, else the init image's own, else 512.
        let planned = dims ?? start.map { [$0.image.width, $0.image.height] } ?? [512, 512]
        try MemoryNeed.check(MemoryNeed.generation(width: planned[0], height: planned[1], batch: batch, guided: guidance > 1,
                                                   vaeTiling: vaeTiling),
                             settings: "--size \(planned[0])x\(planned[1]) with --batch \(batch)",
                             remedy: "lower --size or --batch" + (vaeTiling ? "" : ", or add --vae-tiling"))
        try TextToImageJob.checkOutputDirectory(URL(fileURLWithPath: out), setting: "--out")
        let references = try loraReferences()
        let target = try chooseDevice(device, setting: "--device", dtype: weightsType, dtypeSetting: "--dtype")

        let source = try ModelSource(path: model, variant: variant)
        say("loading \(source.url.path) on \(target)…")
        let pipeline = try StableDiffusionPipeline.load(source, device: target, dtype: weightsType, variant: variant,
                                                        tokenizer: tokenizer.map { URL(fileURLWithPath: $0) }, offload: offload)
        pipeline.vae.useTiling = vaeTiling
        if !references.isEmpty {
            let stack = try pipeline.applyLoRAs(references)
            if fuse { try stack.fuse() }
            for (reference, network) in zip(references, stack.networks) {
                say("LoRA \(reference.url.lastPathComponent) ×\(reference.multiplier): \(network.adapters.count) adapters")
            }
        }
        var options = GenerationOptions(prompt: prompt)
        options.negativePrompt = negativePrompt
        options.steps = steps
        options.guidanceScale = guidance
        options.seed = seed
        if start?.mask != nil, !pipeline.isInpaintingModel {
            throw CommandError("--mask needs an inpainting model (its UNet takes 9 input channels, as runwayml/stable-diffusion-inpainting or sd-v1-5-inpainting); \(model)'s takes \(pipeline.unet.config.inChannels): pass one as --model, or drop --mask for img2img")
        }
        if start?.mask == nil, pipeline.isInpaintingModel {
            throw CommandError("\(model) is an inpainting model (its UNet takes 9 input channels): give --init-image and --mask, or use a text-to-image model")
        }
        if let start {
            options.initImage = start.image
            options.mask = start.mask
            options.strength = start.strength
            // diffusers' img2img keeps the image's size, rounded down to the VAE's scale factor.
            let own = ImageToImage.defaultSize(of: start.image, multiple: pipeline.vaeScaleFactor)
            (options.width, options.height) = dims.map { ($0[0], $0[1]) } ?? own
            say("\(start.mask == nil ? "img2img" : "inpainting") from \(start.image.width)x\(start.image.height) at \(options.width)x\(options.height), strength \(GenerationInfo.number(start.strength))")
        } else {
            (options.width, options.height) = dims.map { ($0[0], $0[1]) } ?? (512, 512)
        }
        options.batch = batch
        options.perImageSeeds = perImageSeeds
        options.clipSkip = clipSkip - 1
        var job = TextToImageJob(options: options, sampler: sampler, outputDirectory: URL(fileURLWithPath: out))
        job.modelName = source.displayName
        if !noHash, case .singleFile(let file) = source { job.modelHash = try FileHash.modelHash(file) }
        job.loras = try references.map {
            ($0.url.deletingPathExtension().lastPathComponent, noHash ? "" : try FileHash.loraHash($0.url), $0.multiplier)
        }

        // Installed only now: a stop while loading needs no saving, so Ctrl-C there ends the process at once.
        let interruption = Interruption.install()
        // The scheduler's own count of UNet calls: PNDM's 12 steps are 13, Heun's and DPM2's 23.
        var bar: ProgressLine?
        var reached = (0, 0)
        let urls: [URL]
        do {
            urls = try job.run(pipeline) { step, total in
                if bar == nil { bar = ProgressLine(total: total, label: "generating") }
                bar?.update(step)
                reached = (step, total)
                return !interruption.requested
            }
        } catch is StopRequested {
            // The batch is denoised together: no image of it is finished before the last step.
            say("stopped at denoising step \(reached.0) of \(reached.1); no image written")
            throw ExitCode(130)
        }
        bar?.finish()
        for url in urls { say("wrote \(url.path)") }
        if let stencilSettings { try writeStencils(urls, stencilSettings, interruption) }
    }

    /// NAME-stencil.png and .svg beside each generated NAME.png.
    func writeStencils(_ urls: [URL], _ settings: StencilSettings, _ interruption: Interruption) throws {
        let stop = { interruption.requested }
        for url in urls {
            let start = Date()
            do {
                let made = try Stencil(try ImageDecoder.read(url).image, settings: settings, shouldStop: stop)
                let base = url.deletingLastPathComponent().appendingPathComponent(url.deletingPathExtension().lastPathComponent + "-stencil")
                let files = try made.write(to: base, trace: stencilOptions.trace(settings), shouldStop: stop)
                say(describe(made, files, seconds: Date().timeIntervalSince(start)))
            } catch is StopRequested {
                say("stopped before the stencil of \(url.lastPathComponent) was finished; the images are kept")
                throw ExitCode(130)
            }
        }
    }

    /// --init-image and --mask decoded and --strength checked, before any model loads; nil without --init-image.
    func initImageAndStrength() throws -> (image: Image, mask: Image?, strength: Double)? {
        guard let initImage else {
            if strength != nil { throw ValidationError("--strength applies to img2img: give --init-image too") }
            if mask != nil { throw ValidationError("--mask inpaints an image: give --init-image too") }
            return nil
        }
        let strength = self.strength ?? GenerationOptions(prompt: "").strength
        guard strength > 0, strength <= 1 else { throw ValidationError("--strength must be in (0, 1], got \(strength)") }
        do {
            try ImageToImage.check(strength: strength, steps: steps)
        } catch {
            throw ValidationError("--strength \(GenerationInfo.number(strength)) with --steps \(steps) runs no step (img2img runs int(steps × strength)); raise either")
        }
        return (try readImage(initImage, flag: "--init-image"), try mask.map { try readImage($0, flag: "--mask") }, strength)
    }

    /// An image that a flag names, or an error naming the flag and the file.
    func readImage(_ path: String, flag: String) throws -> Image {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: url.path) else { throw ValidationError("\(flag) \(path): no such file") }
        do {
            return try Image.load(url)
        } catch {
            // The decoder's message names the file and what is wrong with it.
            throw ValidationError("\(flag): \(error)")
        }
    }

    /// The --lora files, then each LoRA the prompt's tags name, found in --lora-dir; checked before any model loads.
    func loraReferences() throws -> [LoRAReference] {
        let given = try loras.map { try LoRAReference(parsing: $0) }
        let tags = try LoRAPromptTag.extract(from: prompt).tags
        var problems: [String] = []
        // Missing, a named pipe (which would block the load forever) or a pickle: each file by what it is,
        // naming where it came from.
        func check(_ url: URL, _ setting: String) -> Bool {
            do {
                try RegularFile.require(url.path, setting: setting)
                try PickledCheckpoint.refuse(url)
                return true
            } catch {
                problems.append("\(error)")
                return false
            }
        }
        for reference in given { _ = check(reference.url, "--lora") }
        var found: [LoRAReference] = []
        for tag in tags {
            if given.contains(where: { $0.url.deletingPathExtension().lastPathComponent == tag.name }) {
                problems.append("\(tag.text) in --prompt and --lora name the same LoRA; give it once")
            } else if let directory = loraDirectory {
                let file = URL(fileURLWithPath: directory).appendingPathComponent("\(tag.name).safetensors")
                if check(file, "\(tag.text) in --lora-dir") { found.append(LoRAReference(url: file, multiplier: tag.scale)) }
            } else {
                problems.append("\(tag.text): pass --lora-dir FOLDER (holding \(tag.name).safetensors) or --lora FILE:\(GenerationInfo.number(tag.scale)) without the tag")
            }
        }
        if !problems.isEmpty { throw CommandError(problems.joined(separator: "\n")) }
        return given + found
    }
}

let samplerHelp = """
    Sampler: \(Sampler.names), or its A1111 / ComfyUI name ("DPM++ 2M Karras", "Euler a", dpmpp_2m_karras, \
    euler_ancestral); --scheduler is the same option
    """

/// `--sampler` by any of its names; the error lists ours.
func parseSampler(_ name: String) throws -> Sampler {
    guard let sampler = Sampler(name: name) else {
        throw ValidationError("--sampler '\(name)' is not one of \(Sampler.names) (or their A1111 / ComfyUI names)")
    }
    return sampler
}

/// `--seed`: as given, or for -1 (A1111's "random") a fresh one, announced so the image can be made again.
func resolvedSeed(_ seed: Int64) throws -> UInt64 {
    guard seed >= -1 else { throw ValidationError("--seed must be 0 or more, or -1 for a random one, got \(seed)") }
    guard seed == -1 else { return UInt64(seed) }
    // A1111's range: seeds a 32-bit field holds, so the number can be typed back anywhere.
    let random = UInt64.random(in: 0..<(1 << 32))
    say("seed: \(random)")
    return random
}

/// `--size`: "WxH", or one number for a square, multiples of 8.
func imageSize(_ text: String) throws -> [Int] {
    let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
    let dims = parts.count == 1 ? [parts[0], parts[0]] : parts
    guard dims.count == 2, let w = dims[0], let h = dims[1], w > 0, h > 0, w % 8 == 0, h % 8 == 0 else {
        throw ValidationError("--size must be WxH or one number, multiples of 8 (e.g. 512 or 512x768), got '\(text)'")
    }
    return [w, h]
}

let vaeTilingHelp = """
    Decode the VAE in overlapping tiles, blended at the seams (diffusers' enable_vae_tiling): flat VAE memory for \
    large sizes and batches; images differ slightly from untiled ones.
    """
let offloadHelp = """
    Keep the text encoder, UNet and VAE on the CPU and move each to the GPU only while it runs (diffusers' \
    enable_model_cpu_offload): less GPU memory, the same images, a little slower. A no-op on the CPU.
    """

/// The device that a flag or config key names (nil or "auto": the best, or INKWELL_DEVICE), checked against the
/// machine together with the weights dtype before any model loads; dtype warnings go to stderr.
func chooseDevice(_ name: String?, setting: String, dtype: DType?, dtypeSetting: String) throws -> Device {
    do {
        let device = try DeviceChoice.resolve(name, setting: setting)
        let weights = dtype ?? StableDiffusionPipeline.defaultDType(for: device)
        for warning in try DeviceChoice.check(dtype: weights, on: device, setting: dtypeSetting) {
            FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
        }
        return device
    } catch let error as DeviceChoiceError {
        throw CommandError(error.description)
    }
}
