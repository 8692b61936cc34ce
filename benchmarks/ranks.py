"""make bench, data-parallel rows: `inkwell train` on 1 and 2 ranks (`--nproc`, Gloo over 127.0.0.1) on this
machine's CPU, the same global batch and steps; prints training images/s for each and the 2-rank speed-up.

The run is real: a dataset prepared by `inkwell prepare` from generated line art, the given diffusers folder,
latents cached before timing. The time is the trainer's own (state/trainer.json `seconds`: the training loop,
without model loading and latent caching). On a CPU the ranks share the cores (the launcher gives each
OMP_NUM_THREADS = cores / ranks, as torchrun does), so 2 ranks measure the overhead of the all-reduce more than a
speed-up; on a machine with several GPUs each rank gets its own (not measurable on a one-GPU machine)."""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

from PIL import Image, ImageDraw


def line_art(folder, count, size):
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(7)
    for i in range(count):
        image = Image.new("RGB", (size, size), "white")
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            draw.line([rng.randrange(size) for _ in range(4)], fill="black", width=max(1, size // 32))
        image.save(os.path.join(folder, f"art{i:03d}.png"))


def run(cmd):
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--inkwell", required=True, help="the inkwell binary")
    p.add_argument("--model", required=True, help="a diffusers folder")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=4, help="global batch (per rank: batch / ranks)")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()
    root = tempfile.mkdtemp(prefix="inkwell-ranks-")
    try:
        line_art(os.path.join(root, "raw"), 2 * args.batch + 1, args.size)
        run([args.inkwell, "prepare", "--input", os.path.join(root, "raw"), "--output", os.path.join(root, "data"),
             "--name", "ds", "--resolution", str(args.size)])
        print(f"\ndata-parallel training on the CPU: {os.path.basename(args.model.rstrip('/'))} at {args.size}px, "
              f"global batch {args.batch}, {args.steps} steps, {os.cpu_count()} cores")
        print(f"{'ranks':>5}  {'batch/rank':>10}  {'threads/rank':>12}  {'images/s':>9}  {'vs 1 rank':>9}")
        base = None
        for ranks in args.ranks:
            if args.batch % ranks:
                sys.exit(f"--batch {args.batch} does not split over {ranks} ranks")
            config = os.path.join(root, f"train{ranks}.toml")
            with open(config, "w") as f:
                f.write(f"""[model]
path = "{os.path.abspath(args.model)}"
device = "cpu"
[data]
dataset = "{os.path.join(root, 'data', 'ds')}"
captions = "vanilla"
resolution = {args.size}
[training]
max_steps = {args.steps}
batch_size = {args.batch // ranks}
[validation]
every = 0
[samples]
every = 0
[output]
dir = "{os.path.join(root, 'runs')}"
name = "ranks{ranks}"
""")
            run([args.inkwell, "train", "--config", config, "--nproc", str(ranks)])
            with open(os.path.join(root, "runs", f"ranks{ranks}", "state", "trainer.json")) as f:
                seconds = json.load(f)["seconds"]
            rate = args.steps * args.batch / seconds
            base = base or rate
            threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // ranks))
            print(f"{ranks:>5}  {args.batch // ranks:>10}  {threads:>12}  {rate:>9.2f}  {rate / base:>8.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
