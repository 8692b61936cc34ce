"""make bench-load: a whole generation in PyTorch/diffusers and in Inkwell, each on a quiet machine and with a CPU hog
(another process spinning on one core) beside it; prints the four figures and the ratios.

The hog is what a user's other work does to a CPU run: OpenMP splits every op over a team and waits at a barrier
for its slowest thread, and the thread that shares the hog's core runs a time slice at a time. PyTorch runs with
its defaults (one thread per core, libgomp's spin-waiting); Inkwell with its own (CPUPacing: passive waiting, and
as many threads as there are cores the others leave free). Each figure is a fresh process per side: the median
seconds per generation after warm-up calls.

--model NAME=FOLDER:SIZE:STEPS adds a diffusers folder (default: the tiny test pipeline at 32 px and the demo model
at 64 px, 20 DPM-Solver++ steps each). The machine should be otherwise idle: the script measures what other
processes use before it starts and says so when the quiet figures are not quiet."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def busy_cores_by_others(seconds=1.0):
    """Cores' worth of CPU time other processes used over `seconds` (this script sleeps meanwhile)."""
    def busy():
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:9]
        values = [int(v) for v in fields]
        return (values[0] + values[1] + values[2] + values[5] + values[6] + values[7]) / os.sysconf("SC_CLK_TCK")
    before = busy()
    time.sleep(seconds)
    return (busy() - before) / seconds


class Hog:
    """A process spinning on one CPU (the last this script may use), for the loaded figures."""

    def __init__(self):
        self.cpu = max(os.sched_getaffinity(0))
        self.proc = None

    def __enter__(self):
        code = f"import os; os.sched_setaffinity(0, {{{self.cpu}}})\nwhile True: pass"
        self.proc = subprocess.Popen([sys.executable, "-c", code])
        time.sleep(0.5)  # spinning before the measured side starts
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def torch_side(folder, size, steps, warmup, calls, seconds):
    """Runs in its own process (`--torch-side`): prints {"seconds": median, "threads": torch's count}."""
    import warnings
    warnings.simplefilter("ignore")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    import diffusers
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline
    diffusers.utils.logging.set_verbosity_error()
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)

    def run():
        pipe("minimal line-art tattoo of a rose", num_inference_steps=steps, height=size, width=size,
             generator=torch.Generator().manual_seed(0), output_type="pt")

    with torch.no_grad():
        for _ in range(warmup):
            run()
        samples, start = [], time.perf_counter()
        while len(samples) < calls or time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            run()
            samples.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": statistics.median(samples), "threads": torch.get_num_threads()}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", help="path of the inkwell-bench binary")
    ap.add_argument("--model", action="append", default=[], help="NAME=FOLDER:SIZE:STEPS")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--calls", type=int, default=3, help="minimum timed calls per figure")
    ap.add_argument("--seconds", type=float, default=2.0, help="minimum timed window per figure")
    ap.add_argument("--torch-side", nargs=3, metavar=("FOLDER", "SIZE", "STEPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_side:
        folder, size, steps = args.torch_side
        return torch_side(folder, int(size), int(steps), args.warmup, args.calls, args.seconds)
    if not args.bench:
        ap.error("--bench is required")

    models = args.model or ["tiny=.fixtures/pipeline/model:32:20", "demo=demo-model:64:20"]
    timing = ["--warmup", str(args.warmup), "--calls", str(args.calls), "--seconds", str(args.seconds)]
    # Each side with the environment a user has: no thread or wait settings of this shell leak into it.
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OMP_", "GOMP_", "MKL_")) and k != "INKWELL_THREADS"}
    clean["INKWELL_DEVICE"] = "cpu"

    others = busy_cores_by_others()
    cpus = len(os.sched_getaffinity(0))
    print(f"bench-load: {cpus} CPUs; before starting, other processes kept {others:.2f} cores busy"
          + (" -- NOT QUIET: the quiet figures are contaminated" if others > 0.3 else ""))
    print(f"hog: a process spinning on CPU {Hog().cpu}; median seconds per generation "
          f"({args.warmup} warm-up, >= {args.calls} calls over >= {args.seconds:g} s); threads: the count each side "
          f"ran with (Inkwell's automatic choice)\n")
    header = (f"{'model':28s} {'PyTorch quiet':>14s} {'PyTorch + hog':>14s} {'slowdown':>9s}"
              f" {'Inkwell quiet':>14s} {'Inkwell + hog':>14s} {'slowdown':>9s} {'Inkwell/PyTorch + hog':>22s}")
    print(header, flush=True)
    errors = []
    for spec in models:
        name, rest = spec.split("=", 1)
        folder, size, steps = rest.rsplit(":", 2)
        torch_cmd = [sys.executable, os.path.join(HERE, "load.py"), "--torch-side", folder, size, steps] + timing
        ink_cmd = [args.bench, "--model", folder, "--size", size, "--steps", steps,
                   "--case", f"generate {steps} steps {size}px"] + timing

        background = busy_cores_by_others()
        figures = {}
        for side, cmd in (("PyTorch", torch_cmd), ("Inkwell", ink_cmd)):
            for loaded in (False, True):
                if loaded:
                    with Hog():
                        figures[side, loaded] = run_side(cmd, clean)
                else:
                    figures[side, loaded] = run_side(cmd, clean)
                value, extra = figures[side, loaded]
                if value is None:
                    errors.append(f"{name}: {side}{' + hog' if loaded else ''}: {extra}")

        def cell(side, loaded):
            value, threads = figures[side, loaded]
            return f"{value:8.3f} s ({threads})" if value is not None else f"{'error':>14s}"

        def ratio(a, b):
            return f"{a / b:8.2f}x" if a is not None and b else f"{'-':>9s}"

        pq, ph = figures["PyTorch", False][0], figures["PyTorch", True][0]
        iq, ih = figures["Inkwell", False][0], figures["Inkwell", True][0]
        label = f"{name} {size}px {steps} steps"
        print(f"{label:28s} {cell('PyTorch', False):>14s} {cell('PyTorch', True):>14s} {ratio(ph, pq)}"
              f" {cell('Inkwell', False):>14s} {cell('Inkwell', True):>14s} {ratio(ih, iq)} {ratio(ih, ph):>22s}"
              f"{f'  (other processes kept {background:.2f} cores busy before this row)' if background > 0.3 else ''}",
              flush=True)
    for e in errors:
        print(f"  error: {e}")


def run_side(cmd, env):
    """(median seconds, threads) from the side's JSON line, or (None, what went wrong)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in reversed(proc.stdout.splitlines()):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "seconds" in row:
            return row["seconds"], row.get("threads")
        if "error" in row:
            return None, row["error"]
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return None, f"exit status {proc.returncode}: {tail}"


if __name__ == "__main__":
    main()
