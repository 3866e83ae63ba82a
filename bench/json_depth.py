"""How long the JSON nesting check (autobot/http.py json_too_deep) holds the event loop on
crafted frames of the chat socket's size limit, against plain json.loads of the same frame in
the same run, and against the check it replaced (kept below as `previous_too_deep`).

Each frame is built to be a worst case for one part of a check: many brackets, deep blocks,
strings full of brackets, escaped quotes with no closing quote (quadratic for the previous
check's string regex, so it is timed on a 16 KB frame of that shape only). Figures are the
best of several runs, in CPU milliseconds of this process. Not a test: it asserts nothing.

    .venv/bin/python bench/json_depth.py [--runs 7]
"""

import argparse
import json
import re
import time

import common  # noqa: F401  first: it puts the project root on sys.path
from report import quick, record

from autobot.http import MAX_JSON_DEPTH, json_too_deep

CHAT_FRAME_BYTES = 12 * 32000 + 4096  # the chat socket's limit with the default message size
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(rb"[\[\]{}]")


def previous_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """The check before this one: strings cut by a regex, then a Python loop over the brackets."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub(b"", raw)):
        depth += 1 if bracket in (b"[", b"{") else -1
        if depth > limit:
            return True
    return False


def frames(size: int) -> dict[str, bytes]:
    def repeat(head: bytes, unit: bytes, tail: bytes) -> bytes:
        return head + unit * ((size - len(head) - len(tail)) // len(unit)) + tail

    block = b"[" * (MAX_JSON_DEPTH - 1) + b"0" + b"]" * (MAX_JSON_DEPTH - 1) + b","
    return {
        "empty arrays [[],[],…]": repeat(b"[", b"[],", b"[]]"),
        "blocks 63 deep": repeat(b"[", block, b"0]"),
        "blocks 2 deep [[0]],…": repeat(b"[", b"[[0]],", b"0]"),
        "strings of brackets": repeat(b'["', b"[{", b'"]'),
        "a string per bracket": repeat(b"[", b'"[",', b'""]'),
        "65 deep, then [],[],…": repeat(b"[" * 65, b"[],", b"0" + b"]" * 65),
        "unclosed [[[[…": b"[" * size,
        "escaped quotes, unclosed": repeat(b"[" * 65 + b'"', b'\\"', b""),
        "a plain chat message": json.dumps({"type": "message", "content": "x" * (size - 64)}).encode(),
    }


def best_ms(fn, raw: bytes, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        try:
            fn(raw)
        except (ValueError, RecursionError):
            pass
        best = min(best, time.process_time() - started)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3 if quick() else 7)
    args = parser.parse_args()
    print(f"{'frame (' + str(CHAT_FRAME_BYTES // 1024) + ' KiB)':32} {'check ms':>9} {'json.loads':>10} "
          f"{'ratio':>6} {'previous':>9}")
    worst = worst_loads = worst_previous = 0.0
    for name, raw in frames(CHAT_FRAME_BYTES).items():
        check = best_ms(json_too_deep, raw, args.runs)
        loads = best_ms(json.loads, raw, args.runs)
        shown = raw if b"\\" not in raw else frames(16 * 1024)[name]  # quadratic before: 16 KB only
        previous = best_ms(previous_too_deep, shown, args.runs)
        note = "" if shown is raw else " (16 KB)"
        print(f"{name:32} {check:9.2f} {loads:10.2f} {check / max(loads, 0.01):6.2f} {previous:9.2f}{note}")
        worst, worst_loads = max(worst, check), max(worst_loads, loads)
        worst_previous = max(worst_previous, previous)
    print(f"{'worst':32} {worst:9.2f} {worst_loads:10.2f} {worst / worst_loads:6.2f} {worst_previous:9.2f}")
    record("JSON depth check, worst crafted chat frame", round(worst, 2), "ms", baseline=round(worst_loads, 2),
           baseline_name="json.loads, worst of the same frames", target="<= 0.5x baseline",
           passed=worst <= 0.5 * worst_loads, note=f"previous check: {worst_previous:.0f} ms")


if __name__ == "__main__":
    main()
