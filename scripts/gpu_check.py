"""The GPU check's parts and its one table; scripts/gpu-check.sh unpacks the bundle and runs this.

Parts, in order, each under a time cap (the SD1.5 benchmark keeps a reserve, so the whole stays in budget):
  fixtures   the tiny pipeline (and the CLIP tokenizer it needs), made by reference/fixtures/*.py
  lane       `inkwell device-check --device cuda` (cpu: a short subset on the virtual GPU), one row per check
  parity     `inkwell generate` against a diffusers run on the device, same seed: max pixel difference (fp32, fp16;
             bf16 on the CPU)
  resume     a tiny training run stopped with SIGINT and resumed, against an uninterrupted run's final LoRA
  ranks      the same run as a one-rank data-parallel launch (torchrun's environment) on NCCL and on Gloo (cuda),
             Gloo only (cpu), against the plain run's final LoRA: the whole DDP path through each backend (two
             ranks need two GPUs for NCCL; the CPU tests in make test run two Gloo ranks)
  precision  fp16 (dynamic loss scaling) and bf16 training runs: every loss finite
  bench      benchmarks/bench.py at the SD1.5 shape, 512 px, bf16 (cpu: the small model at 64 px, one call per
             row, to test the wiring)
A part that fails or runs out of time prints its error in its row and the rest go on; the exit status is 1 if any
row failed. Everything is written under --work (and the table and log under --out)."""
import argparse
import glob
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT = "minimal line-art tattoo of a rose, stencil"


class Check:
    def __init__(self, args):
        self.args = args
        self.cuda = args.device != "cpu"
        self.device = args.device if self.cuda else "cpu"
        self.deadline = time.monotonic() + args.budget
        self.rows = []  # (check, result, reference, verdict)
        self.work = args.work
        os.makedirs(os.path.join(self.work, "logs"), exist_ok=True)
        self.log = open(os.path.join(self.work, "gpu-check.log"), "w")
        self.ink_env = dict(os.environ, LD_LIBRARY_PATH=args.ld_library_path)
        if not self.cuda:
            # The CPU rows compare runs bit for bit, and libtorch's sums follow the thread count, which the
            # automatic choice takes from the load: one fixed count for every run.
            self.ink_env.setdefault("INKWELL_THREADS", "1")
        # The python side must not load the bundled libraries.
        self.py_env = dict(os.environ)
        self.inkwell = os.path.join(args.bin, "inkwell")
        self.bench = os.path.join(args.bin, "inkwell-bench")
        self.model = None

    # ---------------------------------------------------------------- plumbing

    def say(self, text):
        print(text, flush=True)
        self.log.write(text + "\n")
        self.log.flush()

    def row(self, check, result, reference="-", verdict="pass"):
        self.rows.append((check, str(result), str(reference), verdict))
        self.say(f"  {verdict:<6s} {check}: {result}" + (f"  [ref {reference}]" if reference != "-" else ""))

    def left(self):
        return self.deadline - time.monotonic()

    def cap(self, seconds, reserve=0.0):
        """A part's cap: its own, or what the budget leaves after `reserve` seconds kept for later parts."""
        return max(1.0, min(seconds, self.left() - reserve))

    def start(self, cmd, name, ink=True, cwd=None):
        path = os.path.join(self.work, "logs", name + ".log")
        out = open(path, "w")
        self.log.write(f"$ {' '.join(cmd)}\n")
        self.log.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd or REPO, start_new_session=True,
                                env=self.ink_env if ink else self.py_env)
        proc.log_path = path
        return proc

    def finish(self, proc, cap):
        """Waits up to `cap` s; on timeout kills the process group. (exit status or None on timeout, output)."""
        try:
            rc = proc.wait(timeout=max(cap, 0.1))
        except subprocess.TimeoutExpired:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=5)
                    break
                except subprocess.TimeoutExpired:
                    pass
            rc = None
        with open(proc.log_path, errors="replace") as f:
            text = f.read()
        lines = [ln.rsplit("\r", 1)[-1] for ln in text.splitlines()]  # progress lines: the last state only
        self.log.write("\n".join(lines[-150:]) + f"\n[exit status {rc if rc is not None else 'timeout'}]\n")
        self.log.flush()
        return rc, "\n".join(lines)

    def run(self, cmd, name, cap, ink=True, cwd=None):
        try:
            proc = self.start(cmd, name, ink, cwd)
        except OSError as e:  # e.g. a binary missing from the bundle: the row says so
            self.log.write(f"cannot start: {e}\n")
            return 127, f"cannot start {cmd[0]}: {e}"
        return self.finish(proc, cap)

    @staticmethod
    def tail(text, n=1):
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        return " | ".join(lines[-n:])[-300:] if lines else "no output"

    def failure(self, rc, out, cap):
        return f"timed out after {cap:.0f} s: {self.tail(out)}" if rc is None else f"exit {rc}: {self.tail(out, 2)}"

    # ---------------------------------------------------------------- parts

    def fixtures(self, reserve):
        """The tiny pipeline fixture (and the tokenizer it reads), as make test makes them. Reused from .fixtures
        when make test made them already (CI), unless GPU_CHECK_FRESH_FIXTURES=1."""
        folder = os.path.join(self.work, "fixtures")
        os.makedirs(folder, exist_ok=True)
        started, made = time.monotonic(), []
        for name in ("clip_tokenizer", "pipeline"):
            target = os.path.join(folder, name)
            repo_copy = os.path.join(REPO, ".fixtures", name)
            if os.path.exists(os.path.join(repo_copy, ".done")) and os.environ.get("GPU_CHECK_FRESH_FIXTURES") != "1":
                os.symlink(os.path.realpath(repo_copy), target)
                continue
            rc, out = self.run([sys.executable, f"reference/fixtures/{name}.py", target], f"fixture-{name}",
                               self.cap(180, reserve), ink=False)
            if rc != 0:
                self.row(f"fixtures: {name}", self.failure(rc, out, 180), verdict="FAIL")
                return False
            made.append(name)
        self.model = os.path.join(folder, "pipeline", "model")
        import diffusers
        how = f"made {', '.join(made)} in {time.monotonic() - started:.0f} s" if made else "reused .fixtures/"
        self.row("fixtures: tiny pipeline", f"{how} (diffusers {diffusers.__version__})")
        return True

    def lane(self, reserve):
        if self.cuda:
            cmd, cap = [self.inkwell, "device-check", "--device", self.device], 150
        else:  # make test runs the whole lane on the virtual GPU already; here, a short subset tests the wiring
            cmd, cap = [self.inkwell, "device-check", "--device", "vgpu", "--check", "blip-captions",
                        "--check", "clip-score"], 120
        cmd += ["--work", os.path.join(self.work, "lane")]
        rc, out = self.run(cmd, "device-lane", self.cap(cap, reserve))
        if rc is not None and "device-check" in out and ("Unknown" in out or "unexpected argument" in out.lower()):
            self.row("device lane", "not built: this inkwell has no device-check command", verdict="FAIL")
            return
        found = 0
        for line in out.splitlines():
            m = re.match(r"^(pass|FAIL)\s+(\S+)\s+(.*?)(?:\s+\(([\d.]+) s\))?\s*$", line)
            if m:
                found += 1
                detail = m.group(3) + (f" ({m.group(4)} s)" if m.group(4) else "")
                self.row(f"device lane: {m.group(2)}", detail, "CPU", "pass" if m.group(1) == "pass" else "FAIL")
        if rc != 0 or not found:
            self.row("device lane", self.failure(rc, out, cap), verdict="FAIL")

    def parity(self, reserve):
        """inkwell generate vs diffusers on the device, same seed and noise (drawn from a CPU generator on both
        sides), in fp32 and in half precision (fp16; bf16 on the CPU, whose fp16 kernels are few and slow). The
        reference number is diffusers' own difference between that run and fp32 on the CPU."""
        half = "fp16" if self.cuda else "bf16"
        folder = os.path.join(self.work, "parity")
        started = time.monotonic()
        rc, out = self.run([sys.executable, os.path.abspath(__file__), "--diffusers-generate", self.model,
                            self.device, os.path.join(folder, "diffusers.npz"), "fp32", half],
                           "parity-diffusers", self.cap(150, reserve), ink=False)
        if rc != 0:
            self.row("parity vs diffusers", "diffusers: " + self.failure(rc, out, 150), verdict="FAIL")
            return
        import numpy as np
        from PIL import Image
        ref = np.load(os.path.join(folder, "diffusers.npz"))
        self.say(f"  (diffusers: {time.monotonic() - started:.0f} s)")
        for dtype in ("fp32", half):
            name = f"parity {dtype} vs diffusers ({self.device}, 2 images 48x32, 6 steps, CFG)"
            started = time.monotonic()
            rc, out = self.run([self.inkwell, "generate", "--model", self.model, "--prompt", PROMPT, "--steps", "6",
                                "--guidance", "7.5", "--seed", "0", "--size", "48x32", "--batch", "2", "--device",
                                self.device, "--dtype", dtype, "--out", os.path.join(folder, dtype), "--no-hash"],
                               f"parity-{dtype}-inkwell", self.cap(120, reserve))
            if rc != 0:
                self.row(name, "inkwell: " + self.failure(rc, out, 120), verdict="FAIL")
                continue
            paths = sorted(glob.glob(os.path.join(folder, dtype, "*.png")))
            ink = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths]) if paths else None
            theirs, cpu = ref[dtype].astype(np.int16), ref["cpu-fp32"].astype(np.int16)
            if ink is None or ink.shape != theirs.shape:
                self.row(name, f"shapes differ: inkwell {None if ink is None else ink.shape} vs diffusers "
                               f"{theirs.shape}", verdict="FAIL")
                continue
            diff = int(np.abs(ink.astype(np.int16) - theirs).max())
            noise = int(np.abs(theirs - cpu).max())
            bound = (8 if self.cuda else 2) if dtype == "fp32" else 24
            self.row(name, f"max |inkwell - diffusers| {diff} levels ({time.monotonic() - started:.0f} s)",
                     f"diffusers {dtype} {self.device} vs fp32 cpu: {noise}",
                     f"pass (<= {bound})" if diff <= bound else f"FAIL (> {bound})")

    # -- training

    def dataset(self):
        """Six 64 px line drawings, prepared by inkwell prepare (one held out for validation)."""
        from PIL import Image, ImageDraw
        import random
        raw = os.path.join(self.work, "train", "raw")
        os.makedirs(raw, exist_ok=True)
        rng = random.Random(0)
        for i in range(6):
            image = Image.new("RGB", (80, 64), "white")
            draw = ImageDraw.Draw(image)
            for _ in range(4):
                draw.line([(rng.randrange(80), rng.randrange(64)) for _ in range(3)], fill="black", width=3)
            image.save(os.path.join(raw, f"drawing{i}.png"))
        data = os.path.join(self.work, "train", "data")
        rc, out = self.run([self.inkwell, "prepare", "--input", raw, "--output", data, "--name", "ds",
                            "--resolution", "64"], "prepare", 120)
        return os.path.join(data, "ds") if rc == 0 else self.failure(rc, out, 120)

    def config(self, steps):
        path = os.path.join(self.work, "train", "base.toml")
        with open(path, "w") as f:
            f.write(f"""[model]
path = "{self.model}"
device = "{self.device}"
[data]
dataset = "{self.data}"
captions = "vanilla"
resolution = 64
[lora]
rank = 4
alpha = 4.0
[optimizer]
learning_rate = 1e-3
[schedule]
name = "constant"
warmup_steps = 0
[training]
max_steps = {steps}
batch_size = {self.batch}
seed = 42
[validation]
every = {4 if not self.cuda else 10}
[samples]
every = 100000
prompts = ["a rose"]
seeds = [1]
steps = 2
size = 32
[output]
dir = "{os.path.join(self.work, 'train', 'runs')}"
keep = 2
""")
        return path

    def train_cmd(self, run, precision="no", resume=False, steps=None):
        return ([self.inkwell, "train", "--config", self.train_config, "--set", f"output.name={run}",
                 "--set", f"training.mixed_precision={precision}"] + (["--resume"] if resume else [])
                + ([f"--set", f"training.max_steps={steps}"] if steps else []))

    def run_dir(self, run):
        return os.path.join(self.work, "train", "runs", run)

    def log_rows(self, run):
        path = os.path.join(self.run_dir(run), "log.csv")
        if not os.path.exists(path):
            return []
        import csv
        with open(path) as f:
            return list(csv.DictReader(f))

    def lora(self, run):
        from safetensors.torch import load_file
        # A run's final LoRA carries its name (output.name, kohya's output_name habit).
        return load_file(os.path.join(self.run_dir(run), "lora", f"{run}.safetensors"))

    @staticmethod
    def lora_diff(a, b):
        if a.keys() != b.keys():
            return math.inf
        return max(float((a[k].float() - b[k].float()).abs().max()) for k in a) if a else math.inf

    def training_setup(self, reserve):
        # On the CPU (CI, debug binaries) as few steps as still test the wiring.
        self.steps, self.half_steps, self.batch = (100, 20, 2) if self.cuda else (6, 3, 1)
        data = self.dataset()
        if not os.path.isdir(str(data)):
            self.row("training: inkwell prepare", data, verdict="FAIL")
            return False
        self.data = data
        self.train_config = self.config(self.steps)
        return True

    def resume(self, reserve):
        name = f"training: SIGINT + --resume ({self.steps} steps)"
        started = time.monotonic()
        rc, out = self.run(self.train_cmd("a"), "train-a", self.cap(90, reserve))
        if rc != 0:
            self.row(name, "uninterrupted run: " + self.failure(rc, out, 90), verdict="FAIL")
            return
        proc, b_started = self.start(self.train_cmd("b"), "train-b"), time.monotonic()
        stop_at, sent = 2, None
        while proc.poll() is None and time.monotonic() - b_started < self.cap(90, reserve):
            rows = self.log_rows("b")
            if rows and rows[-1].get("step", "").isdigit() and int(rows[-1]["step"]) >= stop_at:
                proc.send_signal(signal.SIGINT)
                sent = int(rows[-1]["step"])
                break
            time.sleep(0.02)
        rc, out = self.finish(proc, self.cap(60, reserve))
        stopped = re.search(r"stopped after (\d+) steps", out)
        if rc != 0 or sent is None or not stopped:
            why = ("the run finished before the SIGINT" if sent is None and rc == 0 else
                   "no 'stopped after' line" if rc == 0 else self.failure(rc, out, 60))
            self.row(name, f"interrupted run: {why}", verdict="FAIL")
            return
        rc, out = self.run(self.train_cmd("b", resume=True), "train-b-resume", self.cap(90, reserve))
        if rc != 0:
            self.row(name, "resumed run: " + self.failure(rc, out, 90), verdict="FAIL")
            return
        diff = self.lora_diff(self.lora("a"), self.lora("b"))
        logs_equal = [r["train_loss"] for r in self.log_rows("a")] == [r["train_loss"] for r in self.log_rows("b")]
        if self.cuda:  # the device's own run-to-run noise (atomics in some backward kernels)
            rc, out = self.run(self.train_cmd("c"), "train-c", self.cap(90, reserve))
            noise = self.lora_diff(self.lora("a"), self.lora("c")) if rc == 0 else None
            reference = f"uninterrupted twice: {noise:.3g}" if noise is not None else "second run failed"
            bound = max(2 * (noise or 0), 1e-3)
            self.noise = noise
        else:
            reference, bound = "bit-exact on the CPU", 0.0
        self.row(name, f"stopped at step {stopped.group(1)}, resumed: max |final LoRA - uninterrupted| {diff:.3g}, "
                       f"log {'equal' if logs_equal else 'differs'} ({time.monotonic() - started:.0f} s)",
                 reference, "pass" if diff <= bound else f"FAIL (> {bound:g})")

    def ranks(self, reserve):
        """A one-rank launch as torchrun makes it (RANK, WORLD_SIZE, MASTER_ADDR/PORT): the trainer joins a process
        group of one and every gradient bucket, loss and stop flag goes through the backend's collectives."""
        import socket
        reference_lora = self.lora("a")
        noise = getattr(self, "noise", None)
        bound = max(2 * (noise or 0), 1e-3) if self.cuda else 0.0
        for backend in (("nccl", "gloo") if self.cuda else ("gloo",)):
            name = f"training: 1-rank launch, {backend} ({self.steps} steps) vs plain run"
            started = time.monotonic()
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
            saved = self.ink_env
            self.ink_env = dict(saved, **env)
            try:
                rc, out = self.run(self.train_cmd(f"dp-{backend}") + ["--dist-backend", backend, "--dist-timeout", "120"],
                                   f"train-dp-{backend}", self.cap(120, reserve))
            finally:
                self.ink_env = saved
            if rc != 0:
                self.row(name, self.failure(rc, out, 120), verdict="FAIL")
                continue
            joined = f"process group ({backend})" in out
            diff = self.lora_diff(reference_lora, self.lora(f"dp-{backend}"))
            self.row(name, f"{'joined' if joined else 'NO process group line'}; max |final LoRA - plain| {diff:.3g} "
                           f"({time.monotonic() - started:.0f} s)",
                     f"uninterrupted twice: {noise:.3g}" if noise is not None else "bit-exact on the CPU",
                     "pass" if joined and diff <= bound else f"FAIL (> {bound:g})" if joined else "FAIL")

    def precision(self, precision, reserve):
        # Inkwell refuses fp16 on the CPU, so the CPU check runs fp16 on the virtual GPU (CPU kernels under CUDA's
        # device rules, where fp16 is allowed) to test the loss-scaling path through the command line.
        vgpu = precision == "fp16" and not self.cuda
        name = (f"training: {precision} ({self.half_steps} steps" + (", dynamic loss scaling" if precision == "fp16" else "")
                + (", virtual GPU)" if vgpu else ")"))
        started = time.monotonic()
        cmd = self.train_cmd(precision, precision, steps=self.half_steps) + (["--set", "model.device=vgpu"] if vgpu else [])
        rc, out = self.run(cmd, f"train-{precision}", self.cap(90, reserve))
        if rc != 0:
            if not self.cuda and re.search(r"(fp16|float16|half).*\b(cpu)\b|\b(cpu)\b.*(fp16|float16|half)", out, re.I):
                self.row(name, f"refused on the CPU: {self.tail(out)}", verdict="skip")
            else:
                self.row(name, self.failure(rc, out, 90), verdict="FAIL")
            return
        rows = self.log_rows(precision)
        losses = [float(r["train_loss"]) for r in rows if r.get("train_loss")]
        weights = self.lora(precision)
        finite = all(math.isfinite(x) for x in losses) and all(bool(t.float().isfinite().all()) for t in weights.values())
        skipped = sum(int(r.get("non_finite") or 0) for r in rows[-1:])
        fp32 = [float(r["train_loss"]) for r in self.log_rows("a") if r.get("train_loss")][:len(losses)]
        last = rows[-1]["step"] if rows else "0"
        self.row(name, f"{len(losses)} steps to step {last}, last loss {losses[-1] if losses else float('nan'):.4f}, "
                       f"{'all finite' if finite else 'NON-FINITE'}, non-finite skipped {skipped} "
                       f"({time.monotonic() - started:.0f} s)",
                 f"fp32 run's loss there {fp32[-1]:.4f}" if fp32 else "-",
                 "pass" if finite and losses and int(last) == self.half_steps else "FAIL")

    # -- benchmark

    def benchmark(self):
        jsonl = os.path.join(self.work, "bench.jsonl")
        started = time.monotonic()
        # The SD1.5-shape model on the GPU; on the CPU the small one, made by the same script (the same path).
        kind = "sd15" if self.cuda else "small"
        models = os.path.join(self.work, "models")
        tokenizer = os.path.join(self.work, "fixtures", "clip_tokenizer", "sd15")
        rc, out = self.run([sys.executable, "benchmarks/make_models.py", models, tokenizer, kind],
                           f"make-{kind}", self.cap(150), ink=False)
        if rc != 0:
            self.row(f"bench: make_models.py {kind}", self.failure(rc, out, 150), verdict="FAIL")
            return
        folder = os.path.join(models, kind)
        if self.cuda:
            specs = [f"sd15-bf16-b1={folder}:512:25:dtype=bf16,warmup=2,calls=5,seconds=0",
                     f"sd15-bf16-b4={folder}:512:25:train,dtype=bf16,batch=4,warmup=2,calls=3,seconds=0"]
        else:
            # One call each at 64 px: this tests the wiring (bench.py, inkwell-bench, the rows), not the speed.
            specs = [f"small-64px-1-call={folder}:64:3:train,warmup=1,calls=1,seconds=0"]
        cmd = [sys.executable, "benchmarks/bench.py", "--bench", self.bench, "--no-ops", "--jsonl", jsonl]
        cmd += (["--cuda"] if self.cuda else ["--threads", "2"])
        for spec in specs:
            cmd += ["--model", spec]
        # bench.py's children (inkwell-bench) need the bundled libraries. The path starts with this python's own
        # torch/lib, and the rest (Swift runtime, codecs under their own sonames) is nothing python loads.
        env = self.ink_env
        path = os.path.join(self.work, "logs", "bench.log")
        proc = subprocess.Popen(cmd, stdout=open(path, "w"), stderr=subprocess.STDOUT, cwd=REPO, env=env,
                                start_new_session=True)
        proc.log_path = path
        rc, out = self.finish(proc, self.cap(600) - 5)
        rows = []
        if os.path.exists(jsonl):
            with open(jsonl) as f:
                rows = [json.loads(line) for line in f if line.strip()]
        self.bench_rows(rows)
        if rc != 0 or not rows:
            self.row("bench", self.failure(rc, out, self.cap(600)), verdict="FAIL")
        else:
            self.say(f"  bench: {len(rows)} rows in {time.monotonic() - started:.0f} s")

    def bench_rows(self, rows):
        def gb(b):
            return f"{b / 2**30:.2f} GB" if b else "-"
        by_name = {}
        for r in rows:
            by_name[(r["model"], r["case"])] = r
            name = f"bench {r['model']}: {r['case']}"
            t, i = r.get("pytorch_s"), r.get("inkwell_s")
            if r.get("errors"):
                self.row(name, "; ".join(r["errors"])[:300], verdict="FAIL")
                continue
            if not t or not i:
                self.row(name, f"no time: inkwell {i}, diffusers {t}", verdict="FAIL")
                continue
            per = r.get("batch", 1)
            rate = "steps/s" if "lora" in r["case"] else "calls/s"
            self.row(name, f"inkwell {1 / i:.3f} {rate} ({per / i:.2f} img/s), peak {gb(r.get('inkwell_peak'))}",
                     f"diffusers {1 / t:.3f} {rate}, peak {gb(r.get('pytorch_peak'))}",
                     f"{t / i:.2f}x speed")
        # What a user sees: Inkwell's trainer caches latents and embeddings, diffusers' script does not.
        for (model, case), r in by_name.items():
            if "cached latents" in case:
                other = by_name.get((model, case.replace("cached latents", "no cache")))
                if other and r.get("inkwell_s") and other.get("pytorch_s"):
                    self.row(f"bench {model}: lora step, inkwell cached vs diffusers script",
                             f"inkwell {1 / r['inkwell_s']:.3f} steps/s",
                             f"diffusers no cache {1 / other['pytorch_s']:.3f} steps/s",
                             f"{other['pytorch_s'] / r['inkwell_s']:.2f}x speed")

    # ---------------------------------------------------------------- main

    def main(self):
        began = time.monotonic()
        self.say(f"gpu-check on {self.device}: budget {self.args.budget:.0f} s, work {self.work}")
        self.guard("inkwell info", self.info)
        reserve = 240 if self.cuda else 60  # kept for the benchmark
        if self.fixtures(reserve):
            self.guard("device lane", lambda: self.lane(reserve))
            self.guard("parity", lambda: self.parity(reserve))
            if self.guard("training setup", lambda: self.training_setup(reserve)):
                self.guard("training resume", lambda: self.resume(reserve))
                self.guard("training ranks", lambda: self.ranks(reserve))
                for precision in ("fp16", "bf16"):
                    self.guard(f"training {precision}", lambda: self.precision(precision, reserve))
            self.guard("bench", self.benchmark)
        self.table(time.monotonic() - began)
        failed = [r for r in self.rows if r[3].startswith(("FAIL", "error"))]
        return 1 if failed else 0

    def info(self):
        rc, out = self.run([self.inkwell, "info"], "info", 60)
        info = " ".join(" ".join(ln.split()) for ln in out.splitlines() if ln.startswith(("device", "CUDA", "distributed")))
        if rc == 0 and self.cuda and "nccl" not in info:
            self.row("inkwell info", info + " (no NCCL in this build: CUDA's and NCCL's headers were missing)", verdict="FAIL")
        elif rc != 0 or (self.cuda and "CUDA devices: 0" in info):
            self.row("inkwell info", self.failure(rc, out, 60) if rc != 0 else info + " (no CUDA: built against a "
                     "CPU-only libtorch, or no GPU here)", verdict="FAIL")
        else:
            self.row("inkwell info", info)

    def guard(self, name, body):
        if self.left() < 5:
            self.row(name, "not run: the time budget is spent", verdict="FAIL")
            return False
        try:
            return body()
        except Exception as e:  # a broken part is a row, and the rest goes on
            self.row(name, f"error: {type(e).__name__}: {e}", verdict="FAIL")
            return False

    def table(self, seconds):
        head = ("check", "result", "reference", "verdict")
        widths = [min(max(len(r[i]) for r in self.rows + [head]), cap) for i, cap in enumerate((64, 110, 48, 16))]

        def line(r):
            return "  ".join(str(c)[:w].ljust(w) for c, w in zip(r, widths)).rstrip()
        failed = sum(r[3].startswith("FAIL") for r in self.rows)
        text = "\n".join([f"\nInkwell GPU check on {self.device}: {len(self.rows)} rows, {failed} failed, "
                          f"{seconds:.0f} s", line(head), "  ".join("-" * w for w in widths)]
                         + [line(r) for r in self.rows])
        self.say(text)
        with open(os.path.join(self.work, "gpu-check.txt"), "w") as f:
            f.write(text + "\n")
            for r in self.rows:  # unabridged rows
                f.write(" | ".join(r) + "\n")
        if self.args.out:
            os.makedirs(self.args.out, exist_ok=True)
            shutil.copy(os.path.join(self.work, "gpu-check.txt"), self.args.out)
            self.log.flush()
            shutil.copy(os.path.join(self.work, "gpu-check.log"), self.args.out)


def diffusers_generate(model, device, target, *dtypes):
    """The reference images: the tiny pipeline on `device` in each of `dtypes`, and on the CPU in fp32, noise from
    a CPU generator (as the fixtures and Inkwell draw it). Saved as uint8 arrays."""
    import numpy as np
    import torch
    from diffusers import StableDiffusionPipeline
    torch_dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    runs = [(dtype, device, dtype) for dtype in dtypes] + [("cpu-fp32", "cpu", "fp32")]
    images = {}
    for key, dev, dtype in runs:
        same = next((k for k, d, t in runs if (d, t) == (dev, dtype) and k in images), None)
        if same:
            images[key] = images[same]
            continue
        pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False,
                                                       torch_dtype=torch_dtypes[dtype]).to(dev)
        pipe.set_progress_bar_config(disable=True)
        out = pipe(PROMPT, num_inference_steps=6, guidance_scale=7.5, height=32, width=48, num_images_per_prompt=2,
                   generator=torch.Generator().manual_seed(0), output_type="np").images
        images[key] = (out * 255).round().astype(np.uint8)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    np.savez(target, **images)


if __name__ == "__main__":
    if len(sys.argv) >= 6 and sys.argv[1] == "--diffusers-generate":
        diffusers_generate(*sys.argv[2:])
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--work", required=True)
    ap.add_argument("--bin", required=True, help="folder with inkwell and inkwell-bench")
    ap.add_argument("--ld-library-path", required=True, help="LD_LIBRARY_PATH for Inkwell's processes")
    ap.add_argument("--budget", type=float, default=480)
    ap.add_argument("--out")
    sys.exit(Check(ap.parse_args()).main())
