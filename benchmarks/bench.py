"""make bench: the same work in PyTorch and in Inkwell, in one run on this machine; prints ratios.

Each case below mirrors a case of benchmarks/InkwellBench/main.swift (same name, shapes and timing method:
warm-up calls, then the median over a minimum number of calls and a minimum time window). Case by case,
PyTorch is timed first, then inkwell-bench runs that one case, so both sides see the same machine load
and only one side's model is in memory at a time (the ops run in one process per side, see compare()).

--model NAME=FOLDER:SIZE:STEPS[:OPTIONS] adds a diffusers folder's cases at SIZE pixels. OPTIONS, comma
separated: `train` (only the LoRA training rows: cached, no cache, cached with gradient checkpointing), `warmup=N`, `calls=N` (minimum timed calls),
`seconds=S` (minimum timed window), `batch=N` (images per call), `dtype=fp32|bf16|fp16` (the frozen
weights'; training keeps the VAE and the adapters in float32). Models default to 3 warm-up calls and >= 5
calls over >= 3 s, batch 1, fp32.

Model rows also give each side's peak memory over the case: on CUDA the most its tensors held
(torch.cuda.max_memory_allocated), on the CPU the process's peak resident size, model included; and the
step's own share of it, the peak above what the process holds between steps (measured after the timed calls,
freed memory handed back): activations, gradients and temporaries, what gradient checkpointing shrinks."""
import argparse
import ctypes
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, replace

# The tables are the only output: quiet the Hugging Face libraries before they are imported.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
warnings.simplefilter("ignore")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


@dataclass(frozen=True)
class Timing:
    warmup: int = 3
    calls: int = 5
    seconds: float = 1.0

    def args(self):
        return ["--warmup", str(self.warmup), "--calls", str(self.calls), "--seconds", str(self.seconds)]


OPS_TIMING = Timing()
# Model calls are few and long, so one disturbed call weighs more: a longer window.
MODEL_TIMING = Timing(seconds=3.0)


def peak_resident_bytes():
    """VmHWM of this process, restarted by reset_peak(): what the CPU case needed, model included."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def resident_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def reset_peak(cuda):
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def held_between_steps(cuda):
    """What the process holds once a step's temporaries are freed: model (paged in by now: diffusers maps
    safetensors files lazily), adapters, optimizer state, caches. The step's own peak is measured above it."""
    if cuda:
        return torch.cuda.memory_allocated()
    release_memory()
    return resident_bytes()


def peak_memory(cuda):
    return torch.cuda.max_memory_allocated() if cuda else peak_resident_bytes()


def measure(body, cuda, timing):
    """(median seconds per call, bytes held between steps)."""
    reset_peak(cuda)
    for _ in range(timing.warmup):
        body()
    if cuda:
        torch.cuda.synchronize()
    samples, start = [], time.perf_counter()
    while len(samples) < timing.calls or time.perf_counter() - start < timing.seconds:
        t0 = time.perf_counter()
        body()
        if cuda:
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - t0)
        if len(samples) >= 1000:
            break
    return statistics.median(samples), held_between_steps(cuda)


def cases(device):
    def randn(*shape):
        return torch.randn(*shape, device=device)

    def matmul():
        a, b = randn(512, 512), randn(512, 512)
        return lambda: a @ b

    def conv():
        x, w = randn(1, 64, 64, 64), randn(64, 64, 3, 3)
        return lambda: F.conv2d(x, w, padding=1)

    def group_norm():
        x, w, b = randn(1, 320, 32, 32), torch.ones(320, device=device), torch.zeros(320, device=device)
        return lambda: F.group_norm(x, 32, w, b)

    def sdpa():
        q = randn(1, 8, 1024, 40)
        return lambda: F.scaled_dot_product_attention(q, q, q)

    def chain():
        x, y = randn(1 << 20), randn(1 << 20)
        return lambda: F.silu(x) * y + 1

    def mlp():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(512, 1024), torch.nn.GELU(), torch.nn.Linear(1024, 512)).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=True)
        x, y = randn(64, 512), randn(64, 512)

        def step():
            with torch.enable_grad():
                loss = F.mse_loss(net(x), y)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
        return step

    def small():
        x = randn(8, 8)

        def run():
            for _ in range(100):
                x + x
        return run

    return {
        "matmul 512x512x512": matmul,
        "conv2d 3x3 64->64 @64x64": conv,
        "group_norm 32 groups [1,320,32,32]": group_norm,
        "sdpa [1,8,1024,40]": sdpa,
        "elementwise chain (silu(x)*y+1) [1M]": chain,
        "MLP train step 512-1024-512 b64 AdamW": mlp,
        "small ops x100 (host overhead)": small,
    }


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def model_cases(folder, size, steps, device, train_only, batch=1, dtype="fp32"):
    import diffusers
    import transformers
    from diffusers import DDPMScheduler, DPMSolverMultistepScheduler, StableDiffusionPipeline
    from diffusers.training_utils import cast_training_params
    from make_models import native_stdout_silenced

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    # Every case loads its own pipeline, as the Swift side does: the LoRA rows' adapters must not stay in
    # the UNet that the generate row times.
    weights = DTYPES[dtype]

    def load():
        with native_stdout_silenced():
            pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False,
                                                           torch_dtype=weights)
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(device)

    prompts = ["a tattoo"] * batch

    def unet_step():
        pipe = load()
        f = pipe.vae_scale_factor
        x = torch.randn(2 * batch, pipe.unet.config.in_channels, size // f, size // f, device=device, dtype=weights)
        ids = pipe.tokenizer(prompts + [""] * batch, padding="max_length", max_length=77, truncation=True,
                             return_tensors="pt").input_ids.to(device)
        context = pipe.text_encoder(ids)[0]
        return lambda: pipe.unet(x, 500, encoder_hidden_states=context)

    def lora_step(cached, checkpointing=False):
        """One step of diffusers' train_text_to_image_lora.py loop (one timestep): latents sampled from
        the float32 VAE's posterior x scaling factor, DDPM add_noise at t = 500 in float32, the UNet in the
        weights' dtype, epsilon MSE in float32, backward into float32 peft rank-16 adapters on
        to_q/to_k/to_v/to_out.0 (the script's cast_training_params), fused AdamW. `cached`: the posterior and the
        prompt's embeddings are computed once (what Inkwell's latent and text caches keep); otherwise each
        step runs the frozen VAE encoder and text encoder, as the script does. `checkpointing`: the UNet's
        enable_gradient_checkpointing() (the script's --gradient_checkpointing). The frozen parts run under
        the caller's no_grad."""
        def make():
            from peft import LoraConfig
            pipe = load()
            unet, vae, text = pipe.unet, pipe.vae.to(torch.float32), pipe.text_encoder
            for frozen in (unet, vae, text):
                frozen.requires_grad_(False)
            unet.add_adapter(LoraConfig(r=16, lora_alpha=16, init_lora_weights="gaussian",
                                        target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
            cast_training_params(unet, dtype=torch.float32)
            if checkpointing:
                unet.enable_gradient_checkpointing()
            opt = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=1e-4, fused=True)
            scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
            g = torch.Generator().manual_seed(0)
            image = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device)
            ids = pipe.tokenizer(prompts, padding="max_length", max_length=77, truncation=True,
                                 return_tensors="pt").input_ids.to(device)
            t = torch.tensor([500] * batch, device=device)
            scale = vae.config.scaling_factor
            posterior, embeddings = vae.encode(image).latent_dist, text(ids)[0]

            def step():
                if cached:
                    latents, context = posterior.sample(generator=g) * scale, embeddings
                else:
                    latents, context = vae.encode(image).latent_dist.sample(generator=g) * scale, text(ids)[0]
                noise = torch.randn(latents.shape, generator=g).to(device)
                noisy = scheduler.add_noise(latents, noise, t)
                with torch.enable_grad():
                    prediction = unet(noisy.to(weights), t, encoder_hidden_states=context.to(weights)).sample
                    loss = F.mse_loss(prediction.float(), noise)
                    loss.backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)
            return step
        return make

    def vae_decode():
        pipe = load()
        z = torch.randn(batch, pipe.vae.config.latent_channels, size // pipe.vae_scale_factor,
                        size // pipe.vae_scale_factor, device=device, dtype=weights)
        return lambda: pipe.image_processor.postprocess(
            pipe.vae.decode(z / pipe.vae.config.scaling_factor).sample, output_type="pt")

    def generate():
        pipe = load()
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
        return lambda: pipe("minimal line-art tattoo of a rose", num_inference_steps=steps, height=size, width=size,
                            num_images_per_prompt=batch, generator=torch.Generator().manual_seed(0),
                            output_type="pt")

    training = {f"lora train step, cached latents {size}px": lora_step(True),
                f"lora train step, no cache {size}px": lora_step(False),
                f"lora train step, cached, checkpointing {size}px": lora_step(True, checkpointing=True)}
    if train_only:
        return training
    return {f"unet step {size}px": unet_step, **training, f"vae decode {size}px": vae_decode,
            f"generate {steps} steps {size}px": generate}


def release_memory():
    """Hands freed memory back to the OS before the other side runs: glibc keeps freed heap pages of a
    multi-GB model otherwise, and on a small machine the two processes must not hold two models."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def time_torch(make, cuda, timing):
    """(seconds, peak bytes, baseline bytes, None) or (None, None, None, error): a failing case is a row that
    says so, not a crashed bench."""
    try:
        with torch.no_grad():
            seconds, baseline = measure(make(), cuda, timing)
            return seconds, peak_memory(cuda), baseline, None
    except Exception as e:
        return None, None, None, f"{type(e).__name__}: {e}"


def run_inkwell(cmd):
    """Runs inkwell-bench: {case name: (seconds, peak bytes, baseline bytes, None) or (None, None, None, error)},
    and the reason
    to give for a case it did not report (a crash ends the process before its remaining cases)."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    results = {}
    for line in proc.stdout.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        results[row.get("name")] = ((row["seconds"], row.get("peak_bytes"), row.get("baseline_bytes"), None)
                                    if "seconds" in row else (None, None, None, row.get("error", "no time")))
    tail = (proc.stderr.strip().splitlines() or ["no output on stderr"])[-1]
    return results, f"no result (exit status {proc.returncode}): {tail}"


def step_bytes(peak, baseline):
    """The step's own peak: above what the process holds between steps."""
    return peak - baseline if peak is not None and baseline is not None else None


def fmt_time(s):
    return f"{s * 1e3:10.2f}ms" if s is not None else f"{'error':>12s}"


def fmt_rate(s, width, per_call=1):
    return f"{per_call / s:{width}.3f}" if s else f"{'-':>{width}s}"


def fmt_bytes(b, width):
    return f"{b / 2**30:{width - 3}.2f} GB" if b else f"{'-':>{width}s}"


JSONL = None  # --jsonl: every row also appended there as it is printed (scripts/gpu_check.py reads it)


def compare(title, torch_cases, cmd, cuda, timing, rate_rows=(), batch=1, one_process=False, memory=False,
            model="ops"):
    """Times every case on both sides and prints its row. `one_process`: PyTorch times all cases, then one
    inkwell-bench process runs them all in the same order, so both sides reach each case in the same warm
    state (a conv runs twice as fast once an MKL matmul has run in the process). Otherwise case by case,
    one inkwell-bench process each, and every row is printed as soon as it has both numbers. `rate_rows`
    get images/s (`batch` per call); `memory` adds both sides' peak memory."""
    started = time.perf_counter()
    print(f"\n{title}")
    header = f"{'case':42s} {'PyTorch':>12s} {'Inkwell':>12s} {'Inkwell/PyTorch':>16s}"
    steps = rate_rows and batch > 1  # steps/s differs from img/s only then
    if steps:
        header += f" {'PyTorch steps/s':>15s} {'Inkwell steps/s':>15s}"
    if rate_rows:
        header += f" {'PyTorch img/s':>14s} {'Inkwell img/s':>14s}"
    if memory:
        header += f" {'PyTorch peak':>13s} {'Inkwell peak':>13s} {'PyTorch step':>13s} {'Inkwell step':>13s}"
    print(header, flush=True)
    if one_process:
        torch_times = {name: time_torch(make, cuda, timing) for name, make in torch_cases.items()}
        ink_times, missing = run_inkwell(cmd)
    errors = []
    for name, make in torch_cases.items():
        if not one_process:
            torch_times = {name: time_torch(make, cuda, timing)}
            release_memory()
            ink_times, missing = run_inkwell(cmd + ["--case", name])
        (t, t_peak, t_base, t_err), (i, i_peak, i_base, i_err) = (torch_times[name],
                                                                  ink_times.get(name, (None, None, None, missing)))
        errors += [f"{name}: {side}: {err}" for side, err in (("PyTorch", t_err), ("Inkwell", i_err)) if err]
        row = f"{name:42s} {fmt_time(t)} {fmt_time(i)} " + (f"{i / t:15.2f}x" if t and i else f"{'-':>16s}")
        if steps:
            row += (f" {fmt_rate(t, 15)} {fmt_rate(i, 15)}" if name in rate_rows else f" {'':15s} {'':15s}")
        if rate_rows:
            row += (f" {fmt_rate(t, 14, batch)} {fmt_rate(i, 14, batch)}" if name in rate_rows
                    else f" {'':14s} {'':14s}")
        if memory:
            row += f" {fmt_bytes(t_peak, 13)} {fmt_bytes(i_peak, 13)}"
            row += f" {fmt_bytes(step_bytes(t_peak, t_base), 13)} {fmt_bytes(step_bytes(i_peak, i_base), 13)}"
        print(row, flush=True)
        if JSONL:
            with open(JSONL, "a") as f:
                f.write(json.dumps({"model": model, "case": name, "batch": batch, "pytorch_s": t, "inkwell_s": i,
                                    "pytorch_peak": t_peak, "inkwell_peak": i_peak,
                                    "errors": [f"{side}: {err}" for side, err in (("PyTorch", t_err), ("Inkwell", i_err))
                                               if err]}) + "\n")
    for e in errors:
        print(f"  error: {e}")
    print(f"({time.perf_counter() - started:.0f} s)", flush=True)


@dataclass
class ModelSpec:
    name: str
    folder: str
    size: int
    steps: int
    train_only: bool = False
    timing: Timing = MODEL_TIMING
    batch: int = 1
    dtype: str = "fp32"


def parse_model(spec):
    """NAME=FOLDER:SIZE:STEPS[:OPTIONS] -> ModelSpec."""
    name, rest = spec.split("=", 1)
    parts = rest.split(":")
    options = parts.pop().split(",") if not parts[-1].isdigit() else []
    m = ModelSpec(name, ":".join(parts[:-2]), int(parts[-2]), int(parts[-1]))
    for option in filter(None, options):
        key, _, value = option.partition("=")
        if key == "train":
            m.train_only = True
        elif key in ("warmup", "calls"):
            m.timing = replace(m.timing, **{key: int(value)})
        elif key == "seconds":
            m.timing = replace(m.timing, seconds=float(value))
        elif key == "batch" and value.isdigit() and int(value) > 0:
            m.batch = int(value)
        elif key == "dtype" and value in DTYPES:
            m.dtype = value
        else:
            sys.exit(f"bench.py: unknown or invalid model option '{option}' in {spec} "
                     f"(train, warmup=N, calls=N, seconds=S, batch=N, dtype={'|'.join(DTYPES)})")
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="path of the inkwell-bench binary")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--cuda", action="store_true")
    ap.add_argument("--no-ops", action="store_true", help="leave out the single-op rows")
    ap.add_argument("--case", action="append", default=[],
                    help="time only the model rows of this name (repeatable), e.g. 'lora train step, cached latents 512px'")
    ap.add_argument("--model", action="append", default=[],
                    help="NAME=FOLDER:SIZE:STEPS[:OPTIONS], a diffusers folder to time (see above)")
    ap.add_argument("--jsonl", help="also append each row to this file as a JSON line")
    args = ap.parse_args()
    global JSONL
    JSONL = args.jsonl
    models = [parse_model(spec) for spec in args.model]
    torch.set_num_threads(args.threads)
    device = "cuda" if args.cuda else "cpu"

    base = [args.bench, "--threads", str(args.threads)] + (["--cuda"] if args.cuda else [])
    print(f"device: {torch.cuda.get_device_name() if args.cuda else 'cpu'}, threads: {args.threads}, "
          f"torch {torch.__version__}; median time per call, Inkwell/PyTorch < 1: Inkwell faster; "
          f"img/s = images per call / time; peak: {'max_memory_allocated' if args.cuda else 'peak resident size'}")
    if not args.no_ops:
        compare("ops", cases(device), base + OPS_TIMING.args(), args.cuda, OPS_TIMING, one_process=True)
    for m in models:
        torch_cases = model_cases(m.folder, m.size, m.steps, device, m.train_only, m.batch, m.dtype)
        if args.case:
            torch_cases = {name: make for name, make in torch_cases.items() if name in args.case}
        cmd = (base + ["--model", m.folder, "--size", str(m.size), "--steps", str(m.steps), "--batch", str(m.batch),
                       "--dtype", m.dtype] + m.timing.args())
        t = m.timing
        title = (f"model {m.name} ({m.folder}), batch {m.batch}, {m.dtype}: {t.warmup} warm-up, >= {t.calls} calls"
                 f"{f' over >= {t.seconds:g} s' if t.seconds else ''}")
        compare(title, torch_cases, cmd, args.cuda, m.timing, batch=m.batch, memory=True, model=m.name,
                rate_rows=[n for n in torch_cases if "lora train" in n or n.startswith("generate")])


if __name__ == "__main__":
    main()
