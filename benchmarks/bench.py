"""make bench: the same work in PyTorch and in Inkwell, in one run on this machine; prints ratios.

Each case below mirrors a case of Benchmarks/InkwellBench/main.swift (same name, shapes and timing
method: 3 warm-up calls, then the median over >= 1 s or >= 5 calls)."""
import argparse
import json
import subprocess
import time

import torch
import torch.nn.functional as F


def measure(body, cuda, min_seconds=1.0):
    for _ in range(3):
        body()
    if cuda:
        torch.cuda.synchronize()
    samples, start = [], time.perf_counter()
    while len(samples) < 5 or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        body()
        if cuda:
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - t0)
        if len(samples) >= 1000:
            break
    return sorted(samples)[len(samples) // 2]


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


def model_cases(folder, size, steps, device):
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    f = pipe.vae_scale_factor

    def unet_step():
        x = torch.randn(2, pipe.unet.config.in_channels, size // f, size // f, device=device)
        ids = pipe.tokenizer(["a tattoo", ""], padding="max_length", max_length=77, truncation=True,
                             return_tensors="pt").input_ids.to(device)
        context = pipe.text_encoder(ids)[0]
        return lambda: pipe.unet(x, 500, encoder_hidden_states=context)

    def lora_step():
        from peft import LoraConfig
        unet = pipe.unet
        unet.requires_grad_(False)
        unet.add_adapter(LoraConfig(r=16, lora_alpha=16, init_lora_weights="gaussian",
                                    target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
        params = [p for p in unet.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
        latents = torch.randn(1, unet.config.in_channels, size // f, size // f, device=device)
        ids = pipe.tokenizer(["a tattoo"], padding="max_length", max_length=77, truncation=True,
                             return_tensors="pt").input_ids.to(device)
        context = pipe.text_encoder(ids)[0]
        t = torch.tensor([500], device=device)

        def step():
            with torch.enable_grad():
                loss = F.mse_loss(unet(latents, t, encoder_hidden_states=context).sample, latents)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
        return step

    def vae_decode():
        z = torch.randn(1, pipe.vae.config.latent_channels, size // f, size // f, device=device)
        return lambda: pipe.image_processor.postprocess(
            pipe.vae.decode(z / pipe.vae.config.scaling_factor).sample, output_type="pt")

    def generate():
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
        return lambda: pipe("minimal line-art tattoo of a rose", num_inference_steps=steps, height=size, width=size,
                            generator=torch.Generator().manual_seed(0), output_type="pt")

    return {f"unet step {size}px": unet_step, f"lora train step {size}px": lora_step, f"vae decode {size}px": vae_decode,
            f"generate {steps} steps {size}px": generate}


def compare(title, torch_cases, cmd, cuda):
    with torch.no_grad():
        torch_times = {name: measure(make(), cuda) for name, make in torch_cases.items()}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    ink = {}
    for line in out.splitlines():
        row = json.loads(line)
        ink[row["name"]] = row.get("seconds", float("nan"))
    print(f"\n{title}")
    print(f"{'case':40s} {'PyTorch':>12s} {'Inkwell':>12s} {'Inkwell/PyTorch':>16s}")
    for name, t in torch_times.items():
        i = ink.get(name, float("nan"))
        print(f"{name:40s} {t * 1e3:10.2f}ms {i * 1e3:10.2f}ms {i / t:15.2f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="path of the inkwell-bench binary")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--cuda", action="store_true")
    ap.add_argument("--model", action="append", default=[], help="NAME=FOLDER:SIZE:STEPS, a diffusers folder to time")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if args.cuda else "cpu"

    base = [args.bench, "--threads", str(args.threads)] + (["--cuda"] if args.cuda else [])
    print(f"device: {device}, threads: {args.threads}, torch {torch.__version__} (median time per call)")
    compare("ops", cases(device), base, args.cuda)
    for spec in args.model:
        name, rest = spec.split("=", 1)
        folder, size, steps = rest.rsplit(":", 2)
        compare(f"model {name} ({folder})", model_cases(folder, int(size), int(steps), device),
                base + ["--model", folder, "--size", size, "--steps", steps], args.cuda)


if __name__ == "__main__":
    main()
