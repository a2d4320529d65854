"""`make bench-lab`: how fast the lab answers under load, and what serving costs a run training beside it.

On loopback only, bounded in requests and time. Under ``--work`` (default runs/bench-lab) it keeps:

- ``lab/big``: one finished run whose metrics.jsonl has ``--rows`` lines (10,000): a real small run (supervised, one
  epoch on 300 digits), its rows continued by synthetic but well-formed train and eval rows (the curve's shape,
  deterministic), its final row last. Rebuilt when its line count differs.
- ``lab/``: the runs folder that ``paradigms lab`` serves (a subprocess on a free port); the run it starts through
  ``POST /api/start`` lands there.
- ``alone-before``, ``alone-after``: the identical ``paradigms run`` with no lab at all, before and after.

While the lab's run trains, ``--clients`` threads (each its own keep-alive httpx client) send ``--requests`` requests
between them, in turn GET ``/run?run=big``, ``/api/metrics?run=big`` and ``/api/runs``, twice: first as open pages
do, each client waiting about ``--think`` seconds after each answer, in ``--blocks`` parts with a quiet window (the
lab open, nothing asked) before and after each, then flat out. Every latency is recorded, every answer must be 200.
The training's speed is read from its metrics.jsonl as it grows (a train row every 25 steps, seen within 50 ms):
window by window, busy against quiet, and over the whole run against the identical run with no lab, before and after.

Usage: python benchmarks/bench_lab.py [--requests 500] [--clients 16] [--think 1] [--rows 10000] [--epochs 1500]
                                      [--out BENCHMARKS.md]
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench_cli import cpu_name
from driver import run_benchmark

BIN = Path(sys.executable).parent
KINDS = {"run page": "/run?run=big", "/api/metrics": "/api/metrics?run=big", "/api/runs": "/api/runs"}
P95_GOAL_MS, RATIO_GOAL = 100.0, 0.95


def options(ap) -> None:
    ap.add_argument("--requests", type=int, default=500, help="requests in all, from every client together")
    ap.add_argument("--clients", type=int, default=16, help="concurrent clients (threads)")
    ap.add_argument("--rows", type=int, default=10_000, help="lines of the big run's metrics.jsonl")
    ap.add_argument("--epochs", type=int, default=3000,
                    help="epochs of the training run (supervised on the digits, no evaluation until the end)")
    ap.add_argument("--think", type=float, default=1.0,
                    help="seconds each client waits between answer and next request, on average, as a page that polls")
    ap.add_argument("--blocks", type=int, default=4, help="parts of the paced load, each followed by a quiet window")
    ap.add_argument("--quiet-s", type=float, default=8.0, help="seconds of each quiet window (the lab open, idle)")
    ap.add_argument("--panels", action="store_true",
                    help="time the panels instead: one interaction of each, and GPT streams at once")
    ap.add_argument("--panel-requests", type=int, default=50, help="panels: requests timed per interaction")
    ap.add_argument("--streams", type=int, default=10, help="panels: GPT streams opened at once")
    ap.add_argument("--stream-tokens", type=int, default=100, help="panels: tokens each stream writes")
    ap.add_argument("--certify-n", type=int, default=100_000, help="panels: noisy samples of the streamed certificate")
    ap.add_argument("--max-s", type=float, default=600.0, help="bound on the load and on each training run")


def train_sets(epochs: int) -> list[str]:
    return [f"train.epochs={epochs}", "train.eval_every=0", "train.figures=false"]


# -- the big run ------------------------------------------------------------------------------------------------------
def make_big(run: Path, rows: int) -> str:
    """A finished run with ``rows`` lines of metrics.jsonl (kept when it already has them); says what it did."""
    metrics = run / "metrics.jsonl"
    if metrics.is_file() and (run / "final.json").is_file() and len(metrics.read_text().splitlines()) == rows:
        return "kept"
    from paradigms import config as configlib
    from paradigms import recipes
    from paradigms.engine import Trainer

    shutil.rmtree(run, ignore_errors=True)
    cfg = configlib.resolve(recipes.get("supervised"), "quick", None, ["train.epochs=1", "train_size=300"], {})
    Trainer(cfg, run, progress=False).fit()
    real = [json.loads(line) for line in metrics.read_text().splitlines()]
    final = next(r for r in real if r["split"] == "final")
    kept = [r for r in real if r["split"] != "final"]
    last = kept[-1]
    per_epoch = max(1, last["step"] // max(1, last["epoch"]))
    rng = random.Random(0)
    step, epoch, t = last["step"], last["epoch"], float(last.get("time_s") or 0.0)
    out = list(kept)
    while len(out) < rows - 1:                  # a train row and an eval row an epoch, as the engine writes them
        step, epoch, t = step + per_epoch, epoch + 1, t + 0.05
        decay = math.exp(-epoch / 1500)
        loss = 0.03 + 2.2 * decay * (1 + 0.05 * rng.uniform(-1, 1))
        acc = min(1.0, 0.99 - 0.75 * decay + 0.01 * rng.uniform(-1, 1))
        out.append({"step": step, "split": "train", "epoch": epoch - 1, "acc": acc, "loss": loss, "lr": 0.1 * decay})
        if len(out) < rows - 1:
            out.append({"step": step, "split": "eval", "epoch": epoch, "time_s": round(t, 3),
                        "test/acc": acc - 0.01, "test/loss": loss * 1.2})
    final = {**final, "step": step, "epoch": epoch, "time_s": t}
    out.append(final)
    metrics.write_text("".join(json.dumps(r) + "\n" for r in out))
    (run / "final.json").write_text(json.dumps({k: v for k, v in final.items()
                                                if k not in ("split", "epoch", "time_s")}, indent=1))
    return "made"


# -- where one request's time goes (in-process, no network, the machine otherwise as it is) ----------------------------
class NoQueue:
    """The queue's stand-in: create_app without a worker thread."""

    def snapshot(self) -> list:
        return []

    def close(self) -> None:
        pass


def median_ms(f, n: int = 15) -> float:
    f()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def profile(root: Path) -> dict[str, float]:
    from starlette.testclient import TestClient

    from paradigms.engine.runlog import read_metrics
    from paradigms.lab.runs import METRICS, MetricsCache, details, list_runs
    from paradigms.lab.server import create_app

    big = root / "big"
    rows = read_metrics(big)
    client = TestClient(create_app(root, queue=NoQueue()), base_url="http://127.0.0.1")
    return {"GET /run (in-process)": median_ms(lambda: client.get("/run?run=big")),
            "GET /api/metrics (in-process)": median_ms(lambda: client.get("/api/metrics?run=big")),
            f"the {len(rows):,} lines parsed whole (engine.runlog.read_metrics)": median_ms(lambda: read_metrics(big)),
            "the same, read by a fresh lab cache": median_ms(lambda: MetricsCache().rows(big)),
            "the lab's cache, the file unchanged": median_ms(lambda: METRICS.rows(big)),
            "the /api/metrics body from the cache": median_ms(lambda: METRICS.json_rows(big)),
            "json.dumps of the rows (what the cache spares)": median_ms(lambda: json.dumps({"rows": rows})),
            "details(big): what the run page shows": median_ms(lambda: details(root, big)),
            "list_runs: what /api/runs sends": median_ms(lambda: list_runs(root))}


# -- a training run watched as it grows -------------------------------------------------------------------------------
class Watch(threading.Thread):
    """(time, step) of each train row of ``run``/metrics.jsonl, seen within ``every`` seconds of its writing."""

    def __init__(self, run: Path, every: float = 0.05):
        super().__init__(daemon=True)
        self.path, self.every, self.seen, self.stop = run / "metrics.jsonl", every, [], threading.Event()
        self.final: dict | None = None

    def run(self) -> None:
        offset, tail = 0, b""
        while not self.stop.is_set():
            try:
                with open(self.path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            except OSError:
                chunk = b""
            now = time.monotonic()
            if chunk:
                offset += len(chunk)
                *lines, tail = (tail + chunk).split(b"\n")
                for line in lines:
                    row = json.loads(line)
                    if row.get("split") == "train":
                        self.seen.append((now, row["step"]))
                    elif row.get("split") == "final":
                        self.final = row
            if self.final is not None:
                return
            self.stop.wait(self.every)

    def steps_by(self, t: float) -> float:
        """The step the run had reached at time ``t``: linear between the sightings either side of ``t``."""
        before = [(tt, s) for tt, s in self.seen if tt <= t]
        after = [(tt, s) for tt, s in self.seen if tt > t]
        if not before or not after:
            return float(before[-1][1] if before else 0)
        (ta, sa), (tb, sb) = before[-1], after[0]
        return sa + (sb - sa) * (t - ta) / (tb - ta)


def argv(out: Path, epochs: int) -> list[str]:
    """What the lab's queue runs for the request {recipe: supervised, sets: ...} (lab/queue.py), with ``out``."""
    args = ["run", "supervised", "--preset", "quick", "--out", str(out), "--quiet", "--dataset", "digits"]
    for s in train_sets(epochs):
        args += ["--set", s]
    return args


def alone(out: Path, epochs: int, max_s: float) -> Watch:
    """The training run with no lab at all, watched."""
    shutil.rmtree(out, ignore_errors=True)
    watch = Watch(out)
    watch.start()
    env = {**os.environ, "PARADIGMS_PROGRESS": "0"}
    subprocess.run([sys.executable, "-m", "paradigms", *argv(out, epochs)], env=env, check=True, timeout=max_s,
                   stdout=subprocess.DEVNULL)
    watch.join(timeout=10)
    watch.stop.set()
    print(f"{out.name}: {watch.final['step']} steps in {watch.final['time_s']:.1f} s", flush=True)
    return watch


# -- the lab and its load -----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(base: str, requests: int, clients: int, max_s: float, think: float) -> list[tuple[str, int, float, int]]:
    """``requests`` GETs from ``clients`` threads, the kinds in turn, each client waiting ``think`` seconds after each
    answer (0: flat out): (kind, status or -1, seconds, bytes) each."""
    import httpx

    kinds = list(KINDS.items())
    lock, results, counter = threading.Lock(), [], iter(range(requests))
    deadline = time.monotonic() + max_s

    def client() -> None:
        rng = random.Random(threading.get_ident())
        if think:
            time.sleep(think * rng.random())         # pages are not all opened at the same instant
        with httpx.Client(base_url=base, timeout=60) as http:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                kind, path = kinds[i % len(kinds)]
                t0 = time.perf_counter()
                try:
                    r = http.get(path)
                    status, size = r.status_code, len(r.content)
                except httpx.HTTPError:
                    status, size = -1, 0
                with lock:
                    results.append((kind, status, time.perf_counter() - t0, size))
                if think:
                    time.sleep(think * (0.5 + rng.random()))   # pages do not poll in step


    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def wait_for(check, timeout: float, what: str, every: float = 0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"bench-lab: waited {timeout:.0f} s for {what}")


def under_load(root: Path, epochs: int, args) -> tuple[Watch, list, str]:
    """The lab serving ``root``; a run started through it; while it trains, windows in turn: quiet (the lab open,
    nothing asked), the paced load in ``--blocks`` parts each followed by a quiet window, then the load flat out and
    a last quiet window. Each window: (kind, start, end, results), kind "quiet", "paced" or "flat out"."""
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(root.parent / "lab.log", "w")
    lab = subprocess.Popen([str(BIN / "paradigms"), "lab", str(root), "--port", str(port)], stdout=log,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    windows = []

    def quiet() -> None:
        t0 = time.monotonic()
        time.sleep(args.quiet_s)
        windows.append(("quiet", t0, time.monotonic(), []))

    def busy(kind: str, requests: int, think: float) -> None:
        t0 = time.monotonic()
        results = load(base, requests, args.clients, args.max_s, think)
        windows.append((kind, t0, time.monotonic(), results))

    try:
        wait_for(lambda: _answers(base), 60, "the lab to answer")
        body = {"recipe": "supervised", "preset": "quick", "sets": "\n".join(train_sets(epochs))}
        job = httpx.post(base + "/api/start", json=body, timeout=60).json()
        run = root / job["run"]
        watch = Watch(run)
        watch.start()
        wait_for(lambda: watch.seen, args.max_s, "the lab's run to log its first steps")
        quiet()
        for b in range(args.blocks):
            busy("paced", args.requests // args.blocks + (b < args.requests % args.blocks), args.think)
            quiet()
        busy("flat out", args.requests, 0.0)
        quiet()
        if watch.final is not None:
            print("bench-lab: the run ended before the windows did: give it more --epochs", flush=True)
        wait_for(lambda: watch.final, args.max_s, "the lab's run to finish", every=0.5)
        state = wait_for(lambda: _job_state(base, job["job"]), 60, "the lab's queue to see the run end")
        watch.stop.set()
        return watch, windows, state
    finally:
        lab.send_signal(signal.SIGINT)             # Ctrl-C, as a user stops it
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            lab.kill()
        log.close()


def _answers(base: str) -> bool:
    import httpx

    try:
        return httpx.get(base + "/api/queue", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _job_state(base: str, job: int) -> str | None:
    import httpx

    state = next(j["state"] for j in httpx.get(base + "/api/queue", timeout=10).json() if j["id"] == job)
    return state if state not in ("queued", "running") else None


def pct(xs: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``xs``."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


# -- the section ----------------------------------------------------------------------------------------------------------
def clean(work: Path) -> None:
    """What an earlier run of this benchmark left, but the big run: the lab's queue and runs, the runs alone."""
    for path in [work / "lab" / ".lab", work / "lab.log", *work.glob("alone-*"), *(work / "lab").glob("supervised-*")]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def latency_table(results: list) -> tuple[list[str], float]:
    """The latencies by kind of request, and the run page's p95 in ms."""
    table = ["| request | count | errors | p50 | p95 | max | answer size |", "|---|---|---|---|---|---|---|"]
    by_kind = {k: [r for r in results if r[0] == k] for k in KINDS}
    for kind, rs in [*by_kind.items(), ("all", results)]:
        ms = [r[2] * 1000 for r in rs]
        size = statistics.median([r[3] for r in rs]) / 1000
        table.append(f"| {'**all**' if kind == 'all' else f'`{KINDS[kind]}`'} | {len(rs)} | "
                     f"{sum(r[1] != 200 for r in rs)} | {pct(ms, .5):.0f} ms | {pct(ms, .95):.0f} ms | "
                     f"{max(ms):.0f} ms | {size:,.0f} kB |")
    return table, pct([r[2] * 1000 for r in by_kind["run page"]], .95)


def window_speed(watch: Watch, t0: float, t1: float) -> tuple[float, float]:
    """The steps the run made between times ``t0`` and ``t1`` (its step at each, read between the rows' sightings)
    and the window's seconds."""
    return watch.steps_by(t1) - watch.steps_by(t0), t1 - t0


def block(args, runs) -> list[str]:
    work = Path(args.work).resolve()
    root = work / "lab"
    load_avg = os.getloadavg()[0]
    clean(work)
    root.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    made = make_big(root / "big", args.rows)
    print(f"big run {made}: {args.rows:,} lines", flush=True)
    where = profile(root)
    for k, v in where.items():
        print(f"{k}: {v:.1f} ms", flush=True)
    before = alone(work / "alone-before", args.epochs, args.max_s)
    watch, windows, state = under_load(root, args.epochs, args)
    after = alone(work / "alone-after", args.epochs, args.max_s)
    minutes = (time.monotonic() - t_start) / 60

    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    sets = " ".join(f"--set {s}" for s in train_sets(args.epochs))
    lines = [
        "## The lab under load", "",
        f"Command: `make bench-lab` (`python benchmarks/bench_lab.py --requests {args.requests} --clients "
        f"{args.clients} --think {args.think:g} --blocks {args.blocks} --quiet-s {args.quiet_s:g} --rows {args.rows} "
        f"--epochs {args.epochs}`); its runs are kept in `{args.work}`. It took {minutes:.0f} minutes.", "",
        f"Machine: the 2-core development machine ({cpu_name()} x {os.cpu_count()} cores, Python "
        f"{platform.python_version()}), shared with other work (load average {load_avg:.1f} when it started). "
        "Loopback only: `paradigms lab` as a subprocess on a free port of 127.0.0.1, the clients in the benchmark's "
        "process, all on the same two cores as the training.", "",
        f"The lab serves a runs folder holding one finished run whose metrics.jsonl has {args.rows:,} lines (a real "
        "run of one epoch on 300 digits, continued by synthetic but well-formed train and eval rows) and starts, "
        f"through `POST /api/start`, `paradigms run supervised {sets}` on the digits. While that run trains, "
        f"{args.clients} clients (threads, each a keep-alive httpx client) send {args.requests} GET requests between "
        "them, the three kinds in turn, twice: first as open pages do, each client waiting about "
        f"{args.think:g} s (uniformly {args.think / 2:g} to {args.think * 1.5:g} s) after each answer, in "
        f"{args.blocks} parts with {args.quiet_s:g} s of quiet (the lab open, nothing asked) before and after each, "
        "then flat out, each client asking again as soon as it has its answer. Every latency is from sending the "
        "request to having read the whole answer.", "",
    ]
    paced = [r for kind, _, _, rs in windows if kind == "paced" for r in rs]
    flat = [r for kind, _, _, rs in windows if kind == "flat out" for r in rs]
    p95 = {}
    for name, results in (("as pages poll", paced), ("flat out", flat)):
        table, p95[name] = latency_table(results)
        seconds = sum(t1 - t0 for kind, t0, t1, _ in windows if kind == ("paced" if name != "flat out" else name))
        lines += [f"### Latency, {name}", "",
                  f"{len(results)} requests in {seconds:.1f} s ({len(results) / seconds:.1f} requests/s).", "",
                  *table, ""]

    # the training's speed, window by window
    rows, sums = ["| window | what the lab did | steps | seconds | steps/s |", "|---|---|---|---|---|"], {}
    for i, (kind, t0, t1, _) in enumerate(windows, 1):
        steps, secs = window_speed(watch, t0, t1)
        rows.append(f"| {i} | {kind} | {steps:,.0f} | {secs:.1f} | {steps / secs:.0f} |")
        total = sums.setdefault(kind, [0, 0.0])
        total[0] += steps
        total[1] += secs
    rate = {k: v[0] / v[1] for k, v in sums.items()}
    quiet_rates = [steps / secs for steps, secs in (window_speed(watch, t0, t1) for kind, t0, t1, _ in windows
                                                     if kind == "quiet")]
    flat_i = next(i for i, w in enumerate(windows) if w[0] == "flat out")
    around = [window_speed(watch, *windows[j][1:3]) for j in (flat_i - 1, flat_i + 1)]
    around_rate = sum(s for s, _ in around) / sum(t for _, t in around)
    paced_ratio, flat_ratio = rate["paced"] / rate["quiet"], rate["flat out"] / around_rate
    whole = {name: w.final["step"] / w.final["time_s"] for name, w in
             (("before", before), ("lab", watch), ("after", after))}
    whole_ratio = whole["lab"] / statistics.mean([whole["before"], whole["after"]])
    noise = abs(whole["before"] - whole["after"]) / max(whole["before"], whole["after"])
    print(f"p95 /run {p95['as pages poll']:.0f} ms as pages poll, {p95['flat out']:.0f} ms flat out; training "
          f"paced/quiet {paced_ratio:.3f}x, flat/quiet {flat_ratio:.3f}x, whole run with the lab / alone "
          f"{whole_ratio:.3f}x (alone runs {noise:.0%} apart)", flush=True)
    errors = [r for r in paced + flat if r[1] != 200]
    lines += [
        "### The training's speed", "",
        "Each step is read from the run's metrics.jsonl as it grows (a train row every 25 steps, seen within "
        "50 ms); a window's speed is the steps made between its start and its end (the step at each instant read "
        "on the line between the rows seen either side) over its length. The quiet windows, between the busy ones, are the same run with the lab open and idle: the "
        "comparison that the machine's drift (other work on it) disturbs least.", "",
        *rows, "",
        f"Paced windows together: {rate['paced']:.0f} steps/s against {rate['quiet']:.0f} in the quiet ones: "
        f"**{paced_ratio:.3f}x**; the quiet windows alone range from {min(quiet_rates):.0f} to "
        f"{max(quiet_rates):.0f} steps/s, the machine's own drift. Flat out: {rate['flat out']:.0f} steps/s against {around_rate:.0f} in the quiet "
        f"windows either side: **{flat_ratio:.2f}x**: the lab and its clients then take the cores that the "
        "training's two threads need.", "",
        f"The whole run (its final row's `time_s`) against the identical `paradigms run` with no lab at all, run "
        f"before and after: {whole['lab']:.0f} steps/s with the lab (every window, busy or quiet), "
        f"{whole['before']:.0f} alone before, {whole['after']:.0f} alone after: {whole_ratio:.2f}x. The two runs "
        f"alone differ from each other by {noise:.0%}: a ratio within that of 1x is within this machine's noise. "
        f"The lab's queue saw its run end: {state}.", "",
        "| goal | measured | |", "|---|---|---|",
        f"| p95 latency of the run page of a {args.rows:,}-line run < {P95_GOAL_MS:.0f} ms | "
        f"{p95['as pages poll']:.0f} ms as pages poll, {p95['flat out']:.0f} ms flat out | "
        f"{met(p95['as pages poll'] < P95_GOAL_MS)} (flat out: {met(p95['flat out'] < P95_GOAL_MS)}) |",
        f"| every request answered 200 | {len(paced) + len(flat) - len(errors)} of {len(paced) + len(flat)} "
        f"(asked: {2 * args.requests}) | {met(not errors and len(paced) == len(flat) == args.requests)} |",
        f"| training speed with the lab serving / with it idle >= {RATIO_GOAL}x | {paced_ratio:.3f}x as pages poll, "
        f"{flat_ratio:.3f}x flat out | {met(paced_ratio >= RATIO_GOAL)} (flat out: {met(flat_ratio >= RATIO_GOAL)}) |",
        f"| the whole run with the lab / with no lab >= {RATIO_GOAL}x | {whole_ratio:.3f}x (the runs alone "
        f"{noise:.0%} apart) | {met(whole_ratio >= RATIO_GOAL)} |", "",
        "Where one request's time goes, measured in the benchmark's process before the load (no network, one "
        "request at a time, median of 15):", "",
        "| part | median |", "|---|---|",
        *[f"| {k} | {v:.2f} ms |" for k, v in where.items()],
    ]
    return lines


# -- the panels: how long one interaction takes --------------------------------------------------------------------------
def panel_runs(root: Path) -> list[str]:
    """The runs the panels are timed on, made when missing: a standard LeNet-5 and one trained against PGD (30 epochs
    on the digits), and a GPT and a BERT of the quick preset's size trained 20 steps on the standard library's text
    (an interaction's time depends on the network's size, not on how long it trained)."""
    from paradigms import config as configlib
    from paradigms import recipes
    from paradigms.engine import Trainer

    made = []
    short = ["train.epochs=1", "train.figures=false"]
    specs = {"standard": ("supervised", "quick", ["train.epochs=30", "train.figures=false"]),
             "robust": ("supervised", "quick", ["train.epochs=30", "train.figures=false", "adversarial.method=pgd",
                                                "adversarial.eps=0.1", "adversarial.steps=5"]),
             "gpt": ("gpt", "quick", ["train.epochs=1", "steps_per_epoch=20", "eval_batches=2", "sample_tokens=0"]),
             "bert": ("bert", "quick", ["train.epochs=1", "steps_per_epoch=20", "eval_batches=2"]),
             **{name: (name, "quick", short) for name in ("triplet", "simclr", "moco", "clip", "autoencoder", "vae",
                                                          "mae", "gan")}}
    for name, (recipe, preset, sets) in specs.items():
        if (root / name / "final.json").is_file():
            continue
        shutil.rmtree(root / name, ignore_errors=True)
        dataset = "stdlib" if recipe in ("gpt", "bert") else "digits"
        cfg = configlib.resolve(recipes.get(recipe), preset, None, sets, {"dataset": dataset})
        Trainer(cfg, root / name, progress=False).fit()
        made.append(name)
    if not list((root / "standard" / "results").glob("*-attack-patch-*.json")):      # the patch panel's patch
        subprocess.run([str(BIN / "paradigms"), "attack", str(root / "standard"), "--method", "patch", "--target", "3",
                        "--patch-steps", "200", "--n", "200"], check=True, stdout=subprocess.DEVNULL)
        made.append("standard's patch")
    return made


def drawn_digit() -> bytes:
    """A seven drawn as on the classify panel's canvas: white strokes on black, 224 x 224, a PNG."""
    import io

    from PIL import Image, ImageDraw

    img = Image.new("L", (224, 224))
    ImageDraw.Draw(img).line([(50, 50), (175, 50), (95, 190)], fill=255, width=25)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


DIGIT_NAMES = "zero, one, two, three, four, five, six, seven, eight, nine"


def certify_stream(http, n: int) -> dict:
    """One certificate read as the certify panel's page reads it: its progress pieces, the gaps between them, the
    answer."""
    t0 = time.perf_counter()
    times, answer = [], None
    params = {"run": "standard", "test": "0", "sigma": "0.25", "n": str(n)}
    with http.stream("POST", "/api/stream/certify", params=params) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: {}":
                piece = json.loads(line[6:])
                if "view" in piece:
                    answer = f"{piece['prediction']}, radius {piece['radius']:.3f}"
                else:
                    times.append(time.perf_counter() - t0)
    total = time.perf_counter() - t0
    gaps = [b - a for a, b in zip([0.0, *times], [*times, total])]
    return {"pieces": len(times), "first": times[0] if times else total, "gap": max(gaps), "total": total,
            "answer": answer, "done": answer is not None}


def panels_block(args, runs) -> list[str]:
    import httpx

    work = Path(args.work).resolve()
    root = work / "panels"
    root.mkdir(parents=True, exist_ok=True)
    load_avg = os.getloadavg()[0]
    t_start = time.monotonic()
    made = panel_runs(root)
    print(f"runs made: {', '.join(made) or 'none (kept)'}", flush=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(work / "panels-lab.log", "w")
    lab = subprocess.Popen([str(BIN / "paradigms"), "lab", str(root), "--port", str(port)], stdout=log,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    digit = drawn_digit()
    interactions = {
        "classify a drawn digit (PNG, 224 x 224)": ("classify", {"run": "standard"}, digit),
        "classify a test image": ("classify", {"run": "standard", "test": "0"}, b""),
        "the 12 most confident mistakes (1,000 test images)": ("mistakes", {"run": "standard"}, b""),
        "attack: FGSM, eps 0.1": ("attack", {"run": "standard", "test": "0", "eps": "0.1", "method": "fgsm"}, b""),
        "attack: PGD-10, eps 0.1": ("attack", {"run": "standard", "test": "0", "eps": "0.1", "steps": "10"}, b""),
        "attack: PGD-10 on the robust run": ("attack", {"run": "robust", "test": "0", "eps": "0.1", "steps": "10"},
                                             b""),
        "attack: PGD-40 on a drawn digit": ("attack", {"run": "standard", "eps": "0.1", "steps": "40"}, digit),
        "augment: 18 versions of a drawn digit": ("augment", {"run": "standard", "transforms": "rotate, blur",
                                                                "strength": "0.5", "n": "18"}, digit),
        "patch: pasted on a drawn digit": ("patch", {"run": "standard", "px": "0.3", "py": "0.6"}, digit),
        "certify: 1,000 noisy samples, no stream": ("certify", {"run": "standard", "test": "0", "n": "1000",
                                                                "sigma": "0.25"}, b""),
        "triplet: two faces and the people table": ("triplet", {"run": "triplet", "a": "0", "b": "5"}, b""),
        "neighbours: SimCLR, a drawn digit": ("neighbours", {"run": "simclr", "k": "8"}, digit),
        "neighbours: MoCo, a test image": ("neighbours", {"run": "moco", "test": "3", "k": "8"}, b""),
        "CLIP zero-shot: ten labels": ("clip", {"run": "clip", "test": "0", "labels": DIGIT_NAMES}, b""),
        "retrieval: CLIP, a caption": ("retrieval", {"run": "clip", "query": "a photo of a three.", "k": "8"}, b""),
        "autoencoder: a drawn digit scored": ("autoencoder", {"run": "autoencoder"}, digit),
        "VAE: the sliders' code and 16 samples": ("vae", {"run": "vae", "z1": "1", "z2": "-1", "n": "16"}, b""),
        "GAN: 16 samples and an 8-step walk": ("gan", {"run": "gan"}, b""),
        "GPT: the next-token table": ("gpt", {"run": "gpt", "prompt": "def ", "tokens": "0"}, b""),
        "BERT: the fills of a [MASK]": ("bert", {"run": "bert", "text": "def [MASK](self):"}, b""),
        "MAE: a drawn digit, 80% hidden": ("mae", {"run": "mae", "ratio": "0.8"}, digit),
    }
    results = {}
    try:
        wait_for(lambda: _answers(base), 60, "the lab to answer")
        with httpx.Client(base_url=base, timeout=120) as http:
            for what, (panel, params, body) in interactions.items():
                n = args.panel_requests if panel != "mistakes" else max(5, args.panel_requests // 5)
                http.post(f"/api/panel/{panel}", params=params, content=body)        # the network loaded
                ms, statuses = [], []
                for _ in range(n):
                    t0 = time.perf_counter()
                    r = http.post(f"/api/panel/{panel}", params=params, content=body)
                    ms.append((time.perf_counter() - t0) * 1000)
                    statuses.append(r.status_code)
                results[what] = (ms, statuses)
                print(f"{what}: p50 {pct(ms, .5):.0f} ms, p95 {pct(ms, .95):.0f} ms", flush=True)

            # a certificate of 100,000 samples, its progress streamed as the page reads it
            certificate = certify_stream(http, args.certify_n)
            print(f"certify, n={args.certify_n:,}: {certificate['pieces']} progress pieces, the first after "
                  f"{certificate['first'] * 1000:.0f} ms, the longest gap {certificate['gap'] * 1000:.0f} ms, the "
                  f"answer after {certificate['total']:.1f} s", flush=True)

        # GPT streams at once: each a client reading server-sent events
        streams = {}

        def stream(i: int) -> None:
            t0 = time.perf_counter()
            first, pieces, ended = None, 0, False
            with httpx.Client(base_url=base, timeout=300) as http:
                with http.stream("GET", "/api/stream/gpt", params={"run": "gpt", "prompt": "def ", "seed": i,
                                                                    "tokens": args.stream_tokens}) as r:
                    for line in r.iter_lines():
                        if line == "event: piece":
                            pieces += 1
                            first = first or time.perf_counter() - t0
                        elif line == "event: end":
                            ended = True
            streams[i] = (first, pieces, ended, time.perf_counter() - t0)

        threads = [threading.Thread(target=stream, args=(i,)) for i in range(args.streams)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.max_s)
        stream_s = time.monotonic() - t0
    finally:
        lab.send_signal(signal.SIGINT)
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            lab.kill()
        log.close()
    minutes = (time.monotonic() - t_start) / 60

    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    table = ["| interaction | requests | errors | p50 | p95 | max |", "|---|---|---|---|---|---|"]
    for what, (ms, statuses) in results.items():
        table.append(f"| {what} | {len(ms)} | {sum(s != 200 for s in statuses)} | {pct(ms, .5):.0f} ms | "
                     f"{pct(ms, .95):.0f} ms | {max(ms):.0f} ms |")
    digit_p50 = pct(results["classify a drawn digit (PNG, 224 x 224)"][0], .5)
    worst = max(results, key=lambda w: pct(results[w][0], .95))
    worst_p95 = pct(results[worst][0], .95)
    errors = sum(s != 200 for _, st in results.values() for s in st)
    done = [v for v in streams.values() if v[2]]
    firsts = [v[0] * 1000 for v in done if v[0] is not None]
    rates = [v[1] / v[3] for v in done]
    lines = [
        "## The lab's panels: one interaction, end to end", "",
        f"Command: `make bench-lab-panels` (`python benchmarks/bench_lab.py --panels --panel-requests "
        f"{args.panel_requests} --streams {args.streams} --stream-tokens {args.stream_tokens}`); its runs are kept "
        f"in `{args.work}/panels`. It took {minutes:.1f} minutes ("
        f"{'the runs made now: ' + ', '.join(made) if made else 'the runs kept from an earlier invocation'}).", "",
        f"Machine: the 2-core development machine ({cpu_name()} x {os.cpu_count()} cores, Python "
        f"{platform.python_version()}), shared with other work (load average {load_avg:.1f} when it started). "
        "`paradigms lab` as a subprocess on a free port of 127.0.0.1; one keep-alive httpx client sends each "
        "interaction's requests one after another, as a user's page does (the first, which loads the network, is "
        "not counted); every latency is from sending the request to having read the whole answer, so it includes "
        "the network's work, the PNGs made for the page and the JSON. The networks: LeNet-5 on the 8x8 digits, "
        "standard and trained against PGD (30 epochs each); a GPT and a BERT of the quick preset's size (4 layers, "
        "block 64) trained 20 steps on the standard library's text; the triplet, SimCLR, MoCo, CLIP, autoencoder, "
        "VAE, MAE and GAN recipes' quick presets on the digits, one epoch each; the standard LeNet-5's universal patch "
        "(`paradigms attack --method patch --target 3`, 200 steps).", "",
        *table, "",
        f"{args.streams} GPT streams opened at once, {args.stream_tokens} tokens each (temperature 0.8, top-k 200): "
        f"{len(done)} of {args.streams} ended with their `end` event in {stream_s:.1f} s; first piece after "
        f"{pct(firsts, .5):.0f} ms (p50) and {pct(firsts, .95):.0f} ms (p95); each stream "
        f"{statistics.median(rates):.0f} pieces/s (median), {sum(v[1] for v in done) / stream_s:.0f} pieces/s in all.",
        "",
        f"A certificate of one test image by randomized smoothing (σ 0.25, n {args.certify_n:,}, n0 100, the page's "
        f"stream): {certificate['pieces']} progress pieces, the first after {certificate['first'] * 1000:.0f} ms and "
        f"never more than {certificate['gap'] * 1000:.0f} ms apart; the answer ({certificate['answer']}) after "
        f"{certificate['total']:.1f} s.",
        "",
        "| goal | measured | |", "|---|---|---|",
        f"| a digit classified end to end, p50 < 50 ms | {digit_p50:.0f} ms | {met(digit_p50 < 50)} |",
        f"| every interaction p95 < 500 ms (streams aside) | the slowest, {worst}: {worst_p95:.0f} ms | "
        f"{met(worst_p95 < 500)} |",
        f"| certify streams its progress | a piece at least every {certificate['gap'] * 1000:.0f} ms, the answer after "
        f"{certificate['total']:.1f} s | {met(certificate['pieces'] > 1 and certificate['done'])} |",
        f"| every answer 200 | {errors} errors | {met(errors == 0)} |",
        f"| {args.streams} concurrent GPT streams all complete | {len(done)} of {args.streams} | "
        f"{met(len(done) == args.streams)} |",
    ]
    return lines


def study(args, runs) -> list[str]:
    return panels_block(args, runs) if args.panels else block(args, runs)


def main() -> None:
    run_benchmark(__file__, study, options=options, data=None,
                  name=lambda args: "lab-panels" if args.panels else "lab", work_help="where the runs are kept")


if __name__ == "__main__":
    main()
