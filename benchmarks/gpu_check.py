"""The one-command GPU check: on a machine with a CUDA GPU and no network, in under 8 minutes, install
the project, run the CUDA tests, train the default recipe for 60 s on the GPU and score it with the
shipped metric, time gan-train's step (eager vs --cuda-graph vs --compile at batch 64 and 512) and
sampling (torch on the GPU vs the native kernel vs onnxruntime on the CPU), and print one table with
the machine at its top, written to OUT/gpu_check.md and OUT/gpu_check.json.

    python benchmarks/gpu_check.py --out gpu-check/     # on the GPU machine (--no-install: already installed)
    python benchmarks/gpu_check.py --dry-run            # anywhere: the prerequisites a CPU can check, the plan

Each step runs as its own process group under its own time budget (the plan lists them; together they
stay under LIMIT_S), so a step that fails or hangs becomes one row of the table and the next step runs.
Its output goes to OUT/logs/STEP.log, its rows to OUT/steps/STEP.json as they come. The timings are
benchmarks/gpu.py's functions; training, export and scoring are the installed gan-train, gan-export and
gan-eval. Without CUDA the check refuses in one line (exit 2) naming what is missing; the exit code is 1
when a step failed. docs/gpu.md says what each figure means and where the table goes.

The orchestrating process imports nothing of onnxgan (it runs before the install); each step's process does.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 480  # the whole check, issue 15's 8 minutes
REPORT_S = 15  # kept back from the steps for the machine's description and the report
CUDA_TESTS = "tests/test_cuda.py"  # the tests marked `cuda` (pyproject's markers)
TRAIN_SECONDS = 60
START_S = 60  # gan-train's imports, data and models before its first step
EVAL_SAMPLES = 5000
STEP_BATCHES = (64, 512)
TIMED_STEPS, ROUNDS = 100, 5  # timed steps per round, rounds (benchmarks/gpu.py interleaves eager with the mode)
SAMPLE_BATCHES = (1, 64, 1024, 4096)
COMMANDS = ("gan-train", "gan-export", "gan-eval")
SKIPPED = ("skipped (--no-install)", "not run: out of time")  # statuses of steps that did not run


class Failed(Exception):
    """A step or prerequisite that cannot go on; its message is one line of the table."""


@dataclass(frozen=True)
class Step:
    name: str
    budget_s: int
    what: str
    run: Callable[[Path, "Rows"], None]


class Rows:
    """A step's table rows, rewritten to OUT/steps/STEP.json after each change (a step stopped at its
    budget keeps the rows it had)."""

    def __init__(self, path: Path):
        self.path, self.rows = path, {}

    def add(self, case: str, figure: str, compared: str = "", note: str = "") -> None:
        """The row of ``case``: a new one, or the same case's row again with newer figures."""
        self.rows[case] = {"case": case, "figure": figure, "compared": compared, "note": note}
        self.path.write_text(json.dumps(list(self.rows.values()), indent=1))


# ---- the steps, each run in its own process: `gpu_check.py --step NAME --out OUT` ----

def install(out: Path, rows: Rows) -> None:
    start = time.perf_counter()
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-e", str(ROOT)]
    code = subprocess.run(pip, cwd=ROOT).returncode
    if code:
        raise Failed(f"pip exited with {code} (the log has its message)")
    rows.add("pip install --no-deps --no-build-isolation -e .", "installed", note=f"{time.perf_counter() - start:.0f} s")


def cuda_tests(out: Path, rows: Rows) -> None:
    """pytest -v, its lines copied to the log and its outcomes counted as they come (a step stopped at its
    budget still shows what had passed and failed, and the log the test it was in)."""
    pytest = subprocess.Popen([sys.executable, "-m", "pytest", "-v", "-rfEs", "-p", "no:cacheprovider", "-m", "cuda",
                               CUDA_TESTS], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    case, lines, outcomes = f"pytest -m cuda {CUDA_TESTS}", [], {}  # outcomes: test id -> PASSED, FAILED, ...
    for line in pytest.stdout:
        print(line, end="")
        lines.append(line.rstrip())
        outcome = re.match(r"(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED)", line)  # -v: "tests/x.py::test_y PASSED [ 12%]"
        if outcome:
            outcomes[outcome[1]] = outcome[2]
            counts = ", ".join(f"{list(outcomes.values()).count(kind)} {kind.lower()}"
                               for kind in ("PASSED", "FAILED", "ERROR", "SKIPPED") if kind in outcomes.values())
            rows.add(case, f"{counts} so far", note=", ".join(t for t, o in outcomes.items() if o in ("FAILED", "ERROR")))
    code = pytest.wait()
    summary = next((line.strip("= ") for line in reversed(lines) if line.strip()), "no output")
    rows.add(case, summary, note=", ".join(t for t, o in outcomes.items() if o in ("FAILED", "ERROR")))
    if code or " passed" not in summary:  # all skipped would prove nothing
        raise Failed(f"pytest exited with {code}: {summary}")


def train_and_score(out: Path, rows: Rows) -> None:
    """gan-train with no recipe options for TRAIN_SECONDS (then SIGTERM: it saves and exits), gan-export,
    gan-eval. The run's checkpoints (tens of MB) are deleted once exported; its grids, metrics and report stay."""
    from onnxgan.errors import EXIT_TERMINATED

    run, model, scores = out / "train-60s", out / "model.onnx", out / "score.json"
    # --steps and --ckpt-every are schedule options: the 60 s, not the step count, end this run
    train = subprocess.Popen([entry_point("gan-train"), "--device", "cuda", "--out", str(run), "--steps", "1000000000",
                              "--ckpt-every", "1000000000"])
    try:
        started = time.perf_counter()
        while not (run / "config.json").exists():  # written once the models are built: training starts
            if train.poll() is not None:
                raise Failed(f"gan-train exited with {train.returncode} before training")
            if time.perf_counter() - started > START_S:
                raise Failed(f"gan-train did not start training within {START_S} s")
            time.sleep(0.2)
        try:
            code = train.wait(timeout=TRAIN_SECONDS)
        except subprocess.TimeoutExpired:
            train.send_signal(signal.SIGTERM)
            code = train.wait(timeout=60)
    finally:
        if train.poll() is None:
            train.kill()
    if code != EXIT_TERMINATED:
        raise Failed(f"gan-train exited with {code}, not {EXIT_TERMINATED} (saved on SIGTERM)")
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timed = [row for row in metrics if "steps_per_s" in row]
    scored = [row for row in metrics if "fid" in row]
    if not timed:
        raise Failed(f"gan-train wrote no metrics row in {TRAIN_SECONDS} s (one comes every 100 steps)")
    last = timed[-1]
    rows.add(f"gan-train --device cuda, default recipe, SIGTERM after {TRAIN_SECONDS} s",
             f"{last['step']} steps in {last['wall_time']:.0f} s, {last['step'] / last['wall_time']:.0f} steps/s", "",
             f"in-training FID {scored[-1]['fid']:.2f} at step {scored[-1]['step']}" if scored else "no in-training score")
    command(["gan-export", str(run), "-o", str(model)])
    shutil.rmtree(run / "checkpoints")
    command(["gan-eval", str(model), "-n", str(EVAL_SAMPLES), "-o", str(scores)])
    score = json.loads(scores.read_text())
    note = f"precision {score['precision']:.3f}, recall {score['recall']:.3f}, rarest class {score['rarest_class_share']:.1%}"
    if "conditional_accuracy" in score:
        note += f", conditional accuracy {score['conditional_accuracy']:.1%}"
    rows.add(f"gan-eval -n {EVAL_SAMPLES} (the shipped metric: classifier-feature FID)", f"FID {score['fid']:.2f}",
             f"{score['fid'] / score['fid_floor']:.1f}x the floor ({score['fid_floor']:.2f})", note)


def step_timings(mode: str) -> Callable[[Path, Rows], None]:
    """gpu.py's GANTrainer timing of ``mode`` beside eager, in one process, at each of STEP_BATCHES."""
    def run(out: Path, rows: Rows) -> None:
        import gpu
        model_config = default_recipe(out)
        for batch in STEP_BATCHES:
            rates = gpu.train_rates(model_config, batch, "none", TIMED_STEPS, ROUNDS, modes=("eager", mode))
            ours, eager = rates[mode], rates["eager"]
            rows.add(f"batch {batch}", f"{ours['steps_per_s']:.0f} steps/s", f"{ours['ratio']:.2f}x eager",
                     f"eager {eager['steps_per_s']:.0f} steps/s; d_loss {ours['d_loss']:.3f} (eager {eager['d_loss']:.3f}),"
                     f" g_loss {ours['g_loss']:.3f} (eager {eager['g_loss']:.3f})")
    return run


def sampling(out: Path, rows: Rows) -> None:
    import gpu
    model_config = default_recipe(out)
    runners, missing = gpu.sampling_runners(model_config)
    for name, reason in missing.items():
        rows.add(name, "not run", note=reason)
    for batch, rates in gpu.sample_rates(runners, model_config, SAMPLE_BATCHES, ROUNDS).items():
        for name, rate in rates.items():
            rows.add(f"batch {batch}, {name}", f"{rate['ms']:.3f} ms/call, {rate['samples_per_s']:,.0f} samples/s",
                     f"{rate['ratio']:.2f}x torch", f"max |diff| vs torch {rate['max_diff']:.1e}")


STEP_LIST = (
    Step("install", 60, "pip install --no-deps --no-build-isolation -e .", install),
    Step("cuda-tests", 120, f"pytest -m cuda {CUDA_TESTS}", cuda_tests),
    Step("train-60s", 115, f"gan-train --device cuda (default recipe) for {TRAIN_SECONDS} s, gan-export, "
                           f"gan-eval -n {EVAL_SAMPLES}", train_and_score),
    Step("steps-cuda-graph", 35, f"gan-train's step, eager vs --cuda-graph, batch {' and '.join(map(str, STEP_BATCHES))}"
                                 " (benchmarks/gpu.py)", step_timings("cuda-graph")),
    Step("steps-compile", 85, f"gan-train's step, eager vs --compile, batch {' and '.join(map(str, STEP_BATCHES))}"
                               " (benchmarks/gpu.py)", step_timings("compile")),
    Step("sampling", 30, "sampling: torch on CUDA vs native vs onnxruntime CPU (and CUDA), batch "
                         f"{', '.join(map(str, SAMPLE_BATCHES))} (benchmarks/gpu.py)", sampling),
)
STEPS_BY_NAME = {step.name: step for step in STEP_LIST}


def entry_point(name: str) -> str:
    """An installed command's path: beside this interpreter, in its scripts folders, or on PATH."""
    folders = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts")),
               Path(sysconfig.get_path("scripts", sysconfig.get_preferred_scheme("user")))]
    found = next((str(folder / name) for folder in folders if (folder / name).is_file()), shutil.which(name))
    if found is None:
        raise Failed(f"{name} is not installed (no such command beside {sys.executable} or on PATH); "
                     "install the project first")
    return found


def command(args: list[str], log: bool = True, timeout: float = 90) -> str:
    """Run an installed command (its output to this step's log when ``log``); its stdout."""
    result = subprocess.run([entry_point(args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout)
    if log:
        print(result.stdout + result.stderr)
    if result.returncode:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise Failed(f"{args[0]} exited with {result.returncode}: {last}")
    return result.stdout


def default_recipe(out: Path | None):
    """gan-train's default model, as its --dry-run resolves it for the bundled MNIST (kept in
    OUT/default-recipe.json for the next step)."""
    from onnxgan.train.config import ModelConfig

    saved = out / "default-recipe.json" if out else None
    if saved and saved.exists():
        return ModelConfig.from_dict(json.loads(saved.read_text()))
    with tempfile.TemporaryDirectory() as folder:
        model = json.loads(command(["gan-train", "--dry-run", "--device", "cpu", "--out", f"{folder}/run"], log=False))["model"]
    if saved:
        saved.write_text(json.dumps(model, indent=1))
    return ModelConfig.from_dict(model)


def run_child(name: str, out: Path) -> None:
    try:
        STEPS_BY_NAME[name].run(out, Rows(out / "steps" / f"{name}.json"))
    except Failed as e:
        print(f"gpu_check {name}: {e}", file=sys.stderr)
        sys.exit(1)


# ---- the orchestrator ----

def cuda_missing() -> str | None:
    """What stands between this machine and the check (None: PyTorch sees a CUDA device)."""
    try:
        import torch
    except (ImportError, OSError) as e:
        return f"PyTorch cannot be imported ({e})"
    if torch.version.cuda is None:
        return f"this PyTorch ({torch.__version__}) is built without CUDA"
    if not torch.cuda.is_available():
        return (f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device: no GPU or no "
                "NVIDIA driver here")
    return None


def machine() -> dict[str, str]:
    import onnxruntime
    import torch

    props = torch.cuda.get_device_properties(0)
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        driver = smi.stdout.strip().splitlines()[0] if smi.returncode == 0 and smi.stdout.strip() else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        driver = "unknown (no nvidia-smi)"
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else platform.machine()
    return {
        "GPU": f"{props.name}, {props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor}, "
               f"{props.multi_processor_count} SMs ({torch.cuda.device_count()} device(s))",
        "driver": driver,
        "torch": f"{torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}",
        "onnxruntime": f"{onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})",
        "CPU": f"{cpu}, {os.cpu_count()} logical cores; Python {platform.python_version()}",
        "commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True)
    except OSError:
        return "unknown (no git)"
    if head.returncode:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" with local changes" if changed.stdout.strip() else "")


def run_step(step: Step, out: Path, seconds_left: float) -> dict:
    """Run one step's process group to its end or its budget; its record for the report."""
    timeout = min(step.budget_s, seconds_left)
    record = {"step": step.name, "budget_s": step.budget_s, "what": step.what, "seconds": 0.0}
    if timeout < 5:
        return {**record, "status": SKIPPED[1], "rows": []}
    start = time.perf_counter()
    with open(out / "logs" / f"{step.name}.log", "w") as log:
        child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--step", step.name,
                                  "--out", str(out)], cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # logs as they come
        try:
            code = child.wait(timeout=timeout)
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            status = f"stopped after {timeout:.0f} s"
        finally:
            stop_group(child)
    record["seconds"] = round(time.perf_counter() - start, 1)
    try:
        rows = json.loads((out / "steps" / f"{step.name}.json").read_text())
    except (OSError, ValueError):  # none yet, or cut mid-write
        rows = []
    if status != "ok":
        lines = [line for line in (out / "logs" / f"{step.name}.log").read_text(errors="replace").splitlines() if line.strip()]
        rows.append({"case": "-", "figure": "STOPPED" if status.startswith("stopped") else "FAILED", "compared": "",
                     "note": f"{lines[-1].strip() if lines else 'no output'} (logs/{step.name}.log)"})
    return {**record, "status": status, "rows": rows}


def stop_group(child: subprocess.Popen) -> None:
    """SIGTERM to the step's process group (gan-train saves and exits), SIGKILL to what is left after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(child.pid, 0)
            except ProcessLookupError:
                return
            child.poll()  # reap the step itself, so that only living members answer
            time.sleep(0.1)


def table(records: list[dict]) -> list[list[str]]:
    rows = [["step", "status", "case", "figure", "compared", "note"]]
    for record in records:
        status = record["status"] if record["status"] in SKIPPED else \
            f"{record['status']}, {record['seconds']:.0f} of {record['budget_s']} s"
        for i, row in enumerate(record["rows"] or [{"case": "-", "figure": "", "compared": "", "note": ""}]):
            rows.append([record["step"] if i == 0 else "", status if i == 0 else "",
                         row["case"], row["figure"], row["compared"], row["note"]])
    return rows


def markdown(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def report(out: Path, about: dict[str, str], records: list[dict], seconds: float) -> str:
    head = [f"# GPU check: {about['GPU'].split(',')[0]}", ""] + [f"- {key}: {value}" for key, value in about.items()]
    head.append(f"- total: {seconds:.0f} s of the {LIMIT_S} s limit")
    text = "\n".join(head) + "\n\n" + markdown(table(records)) + "\n"
    (out / "gpu_check.md").write_text(text)
    (out / "gpu_check.json").write_text(json.dumps({"machine": about, "limit_s": LIMIT_S, "seconds": round(seconds, 1),
                                                    "steps": records}, indent=1) + "\n")
    return text


def check(out: Path, install_too: bool) -> int:
    start, out = time.perf_counter(), out.resolve()  # the steps run in the repository's root
    missing = cuda_missing()
    if missing:
        print(f"gpu_check: {missing}; run it on a machine with a CUDA GPU (--dry-run checks the rest here)",
              file=sys.stderr)
        return 2
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        print(f"gpu_check: --out {out}: exists and is not an empty folder; give a new one", file=sys.stderr)
        return 2
    for folder in (out / "logs", out / "steps"):
        folder.mkdir(parents=True, exist_ok=True)
    about = machine()
    deadline = start + LIMIT_S - REPORT_S
    records = []
    for step in STEP_LIST:
        if step.name == "install" and not install_too:
            records.append({"step": step.name, "budget_s": step.budget_s, "what": step.what, "seconds": 0.0,
                            "status": SKIPPED[0], "rows": []})
            continue
        print(f"gpu_check: {step.name} (at most {step.budget_s} s): {step.what}", file=sys.stderr)
        records.append(run_step(step, out, deadline - time.perf_counter()))
        report(out, about, records, time.perf_counter() - start)  # a killed check keeps what it had
    print(report(out, about, records, time.perf_counter() - start))
    print(f"wrote {out / 'gpu_check.md'} and {out / 'gpu_check.json'}")
    return 0 if all(record["status"] in ("ok", SKIPPED[0]) for record in records) else 1


# ---- the dry run: every prerequisite a machine without a GPU can check, and the plan ----

def check_packages() -> str:
    if sys.version_info < (3, 10):
        raise Failed(f"Python {platform.python_version()} is older than 3.10")
    versions = []
    for name in ("torch", "onnx", "onnxruntime", "numpy", "pytest", "onnxgan"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except ImportError as e:
            raise Failed(f"{name} cannot be imported ({e})") from None
    return ", ".join(versions)


def check_build_tools() -> str:
    found = []
    for name in ("scikit_build_core", "pybind11"):
        try:
            found.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            raise Failed(f"{name} is not installed: pip install --no-build-isolation needs it beside the project") from None
    cmake = shutil.which("cmake")
    if cmake is None:
        raise Failed("cmake is not on PATH")
    return ", ".join(found + [subprocess.run([cmake, "--version"], capture_output=True, text=True).stdout.split("\n")[0]])


def check_cuda_tests() -> str:
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m",
                             "cuda", CUDA_TESTS], cwd=ROOT, capture_output=True, text=True, timeout=300)
    last = next((line.strip("= ") for line in reversed(result.stdout.splitlines()) if line.strip()), "no output")
    if result.returncode:
        raise Failed(f"{CUDA_TESTS} does not collect (pytest exit {result.returncode}: {last})")
    return f"{CUDA_TESTS}: {last}"


def check_commands() -> str:
    from importlib.metadata import entry_points

    loaded = {point.name: point for point in entry_points(group="console_scripts") if point.name in COMMANDS}
    for name in COMMANDS:
        if name not in loaded:
            raise Failed(f"{name} is not an installed entry point; install the project first")
        loaded[name].load()
    return ", ".join(entry_point(name) for name in COMMANDS)


def check_recipe() -> str:
    config = default_recipe(None)
    return (f"gan-train --dry-run --device cpu: {config.name}, {config.num_classes} classes, "
            f"G {'-'.join(map(str, config.g_hidden))}, D {'-'.join(map(str, config.d_hidden))}")


def check_timing_code() -> str:
    import gpu
    missing = {"eager", "compile", "cuda-graph"} - set(gpu.MODES)
    if missing:
        raise Failed(f"benchmarks/gpu.py has no mode {', '.join(sorted(missing))}")
    return "benchmarks/gpu.py: train_rates, sampling_runners, sample_rates"


def check_samplers() -> str:
    from onnxgan.runtime import Sampler

    model = ROOT / "tests" / "data" / "tiny_mlp.onnx"
    backends = [Sampler(model, backend=backend, device="cpu").info() for backend in ("native", "onnxruntime")]
    return ", ".join(f"{info['backend']} ({info['provider']})" for info in backends) + " load the tiny model"


CHECKS = (  # (what, check, the steps that need it)
    ("Python >= 3.10 and the packages", check_packages, "all"),
    ("build tools for the offline install", check_build_tools, "install"),
    ("the CUDA tests collect", check_cuda_tests, "cuda-tests"),
    ("the installed commands", check_commands, "train-60s"),
    ("the default recipe resolves", check_recipe, "train-60s, steps-*, sampling"),
    ("the timing code", check_timing_code, "steps-*, sampling"),
    ("the CPU samplers", check_samplers, "sampling"),
)


def dry_run(install_too: bool) -> int:
    rows, failures = [["prerequisite", "for", "result"]], 0
    for what, function, steps in CHECKS:
        if steps == "install" and not install_too:
            rows.append([what, steps, "skipped (--no-install)"])
            continue
        try:
            rows.append([what, steps, f"ok: {function()}"])
        except (Failed, subprocess.TimeoutExpired) as e:
            rows.append([what, steps, f"FAILED: {e}"])
            failures += 1
    plan = [step for step in STEP_LIST if install_too or step.name != "install"]
    total = sum(step.budget_s for step in plan)
    if total > LIMIT_S - REPORT_S:
        rows.append(["the plan fits the limit", "all", f"FAILED: {total} s > {LIMIT_S - REPORT_S} s"])
        failures += 1
    print(f"GPU check, dry run (nothing runs on a GPU). CUDA here: {cuda_missing() or 'yes'}\n")
    print(markdown(rows) + "\n")
    print(markdown([["step", "budget", "runs"]] + [[step.name, f"{step.budget_s} s", step.what] for step in plan]
                   + [["total", f"{total} s", f"of {LIMIT_S} s ({REPORT_S} s kept for the report); each step is "
                                              "stopped at its budget"]]))
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu-check", help="A new or empty folder for the table, logs and outputs.")
    parser.add_argument("--dry-run", action="store_true", help="Check the prerequisites and print the plan; no GPU needed.")
    parser.add_argument("--no-install", action="store_true", help="Skip the pip install (the project is installed).")
    parser.add_argument("--step", choices=list(STEPS_BY_NAME), help=argparse.SUPPRESS)  # one step, in its own process
    args = parser.parse_args()
    if args.step:
        run_child(args.step, Path(args.out))
        return
    try:
        sys.exit(dry_run(not args.no_install) if args.dry_run else check(Path(args.out), not args.no_install))
    except KeyboardInterrupt:  # the running step's group was stopped on the way out
        print("gpu_check: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
