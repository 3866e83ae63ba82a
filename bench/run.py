"""The benchmark suite: run every bench/*.py, then print one table of their figures and write
bench/results/latest.json (figures and machine facts).

    .venv/bin/python bench/run.py            # make bench
    .venv/bin/python bench/run.py --quick    # make bench-quick: smaller runs, for development
    .venv/bin/python bench/run.py api chat   # only these benchmarks

Each benchmark runs as its own process with its output shown as it comes; it records its
figures with `report.record`. A benchmark that fails or overruns its time is noted in the table
and the suite goes on. Helper modules (common.py, report.py, …) run too and only say so.
"""

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from report import QUICK_ENV, RESULTS_ENV, machine_facts, table

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
TIMEOUT_SECONDS = 300  # per benchmark; the suite must finish within 15 minutes
STOP_SECONDS = 30  # for an overrunning benchmark to stop its servers after SIGINT

# Smaller runs for `make bench-quick`: the same figures, less precise, in a minute or two.
QUICK_ARGS = {
    "agents": ["--requests", "200", "--broadcasts", "50"],
    "chat": ["--streams", "20", "--probes", "50", "--ttft", "5"],
    "files": ["--mb", "20"],
    "knowledge": ["--chunks", "10000", "--queries", "50"],
    "terminal": ["--size-mb", "10", "--sessions", "10", "--keys", "50"],
    "soak": ["--seconds", "30", "--users", "6"],
}


# The full run's arguments where a benchmark's own defaults are for running it alone: the soak
# (issue 11) soaks for 5 minutes by itself, a minute in the suite (15 minutes in all).
FULL_ARGS = {
    "soak": ["--seconds", "60", "--users", "12"],
}


def run_one(script: Path, results: Path, quick: bool) -> dict | None:
    """Run one benchmark; a row for the table if it failed, else None."""
    argv = [sys.executable, str(script), *(QUICK_ARGS if quick else FULL_ARGS).get(script.stem, [])]
    env = {**os.environ, RESULTS_ENV: str(results), QUICK_ENV: "1" if quick else "0"}
    print(f"== {script.relative_to(BENCH.parent)} {' '.join(argv[2:])}", flush=True)
    started = time.monotonic()
    # A group of its own, so that an overrun stops what it started too: SIGINT first (its
    # `finally` blocks stop its servers), then SIGKILL for the whole group.
    proc = subprocess.Popen(argv, env=env, start_new_session=True)
    try:
        code = proc.wait(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        code = "timeout"
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    if code == 0:
        return None
    return {"bench": script.stem, "figure": "the benchmark itself", "value": None, "unit": "",
            "baseline": None, "baseline_name": "", "ratio": None, "target": "runs to the end",
            "passed": False, "note": f"exit {code}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("only", nargs="*", help="benchmark names (default: all)")
    args = parser.parse_args()

    scripts = [p for p in sorted(BENCH.glob("*.py")) if p.name != Path(__file__).name]
    if args.only:
        scripts = [p for p in scripts if p.stem in args.only]
    facts = machine_facts()
    print("machine:", ", ".join(f"{k} {v}" for k, v in facts.items() if v is not None), flush=True)
    started = time.monotonic()
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", prefix="autobot-bench-") as results:
        failures = [row for script in scripts if (row := run_one(script, Path(results.name), args.quick))]
        rows = [json.loads(line) for line in results.read().splitlines() if line.strip()] + failures
    elapsed = time.monotonic() - started
    print()
    print(table(rows))
    missed = sum(1 for row in rows if row.get("passed") is False)
    print(f"\n{len(rows)} figures, {missed} missed, in {elapsed / 60:.1f} min; load average now "
          f"{os.getloadavg()[0]:.2f} (it was {facts['load_average_1min']})")
    RESULTS.mkdir(exist_ok=True)
    name = "latest-quick.json" if args.quick else "latest.json"
    (RESULTS / name).write_text(json.dumps({
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick,
        "minutes": round(elapsed / 60, 1), "machine": facts, "figures": rows,
    }, indent=2) + "\n")
    print(f"written: bench/results/{name}")


if __name__ == "__main__":
    main()
