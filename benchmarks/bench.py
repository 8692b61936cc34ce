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
        "small ops x100 (host overhead)": small,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="path of the inkwell-bench binary")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--cuda", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if args.cuda else "cpu"

    with torch.no_grad():
        torch_times = {name: measure(make(), args.cuda) for name, make in cases(device).items()}
    cmd = [args.bench, "--threads", str(args.threads)] + (["--cuda"] if args.cuda else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    ink = {}
    for line in out.splitlines():
        row = json.loads(line)
        ink[row["name"]] = row.get("seconds", float("nan"))

    print(f"device: {device}, threads: {args.threads}, torch {torch.__version__}")
    print(f"{'case':40s} {'PyTorch':>12s} {'Inkwell':>12s} {'Inkwell/PyTorch':>16s}")
    for name, t in torch_times.items():
        i = ink.get(name, float("nan"))
        print(f"{name:40s} {t * 1e3:10.3f}ms {i * 1e3:10.3f}ms {i / t:15.2f}x")


if __name__ == "__main__":
    main()
