"""Benchmarks of the Python emitter (BENCHMARKS.md, "The Python emitter").

    python python/bench/bench.py --binary target/release/session-buddy [--commands 20000] [--runs 15] [--cells 200]

Starts `session-buddy serve` on a free loopback port with a fresh $SESSION_BUDDY_HOME, then:

1. `command()` from Python: each `with s.command("deploy", "prod --force"):` around an empty
   block timed on its own (perf_counter_ns), server up and server down (nothing listening), in
   rounds; p50/p99/max over all of them, and the same for `s.record(...)` and for an empty
   `with` of a trivial context manager (what any `with` costs).
2. An IPython session as a whole process: IPython reading CELLS cells from a pipe, untracked and
   tracked (`--ext session_buddy_client.ipython`) with the server up and down, interleaved, each
   RUNS times after a warm-up round; the median wall time of each and the ratios.

Loopback only, bounded by the counts given; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND_TIMING = r"""
import contextlib, json, sys, time
import session_buddy_client

n, rounds = int(sys.argv[1]), int(sys.argv[2])
s = session_buddy_client.session("bench-python", "BenchShell")
assert s.tracked, s.disabled_reason
ns = time.perf_counter_ns
out = {"command": [], "record": [], "empty_with": []}
null = contextlib.nullcontext()
for _ in range(rounds):
    for _ in range(n):
        t = ns()
        with s.command("deploy", "prod --force"):
            pass
        out["command"].append(ns() - t)
    for _ in range(n):
        t = ns()
        s.record("deploy", "prod --force", success=True, duration=0.001)
        out["record"].append(ns() - t)
    for _ in range(n):
        t = ns()
        with null:
            pass
        out["empty_with"].append(ns() - t)
s.end()
json.dump(out, sys.stdout)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env_for(home: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_BUDDY_", "ONEIRIC_"))}
    env.update(SESSION_BUDDY_HOME=str(home), SESSION_BUDDY_URL=url, IPYTHONDIR=str(home / "ipython"), **extra)
    return env


def percentiles(samples_ns: list[int]) -> str:
    s = sorted(samples_ns)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] / 1000  # noqa: E731
    return f"p50 {pick(0.5):.2f} µs, p99 {pick(0.99):.2f} µs, max {s[-1] / 1000:.0f} µs (n={len(s)})"


def start_server(binary: str, home: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [binary, "serve", "--port", "0"],
        env=env_for(home, ""),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    for line in proc.stderr:
        if "listening on " in line:
            return proc, line.split("listening on ", 1)[1].split()[0]
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise SystemExit("the server did not start")


def ipython_run(env: dict[str, str], cells: str, tracked: bool) -> float:
    args = [sys.executable, "-m", "IPython", "--colors=nocolor", "--no-banner"]
    if tracked:
        args += ["--ext", "session_buddy_client.ipython"]
    t = time.perf_counter()
    done = subprocess.run(args, input=cells, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"IPython failed: {done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.environ.get("SESSION_BUDDY_BIN") or shutil.which("session-buddy"))
    parser.add_argument("--commands", type=int, default=20000, help="commands per round and kind")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=15, help="IPython runs per configuration")
    parser.add_argument("--cells", type=int, default=200, help="cells per IPython run")
    a = parser.parse_args()
    if not a.binary:
        raise SystemExit("no session-buddy binary: --binary PATH")

    base = Path(tempfile.mkdtemp(prefix="sb-bench-py-"))
    homes = {name: base / name for name in ("up", "down", "untracked")}
    for home in homes.values():
        home.mkdir()
    server, url = start_server(a.binary, homes["up"])
    down_url = f"http://127.0.0.1:{free_port()}"
    try:
        print(f"python {sys.version.split()[0]}, server {url} ({a.binary})")
        print(f"\n1. command() from Python: {a.rounds} rounds of {a.commands} each")
        for name, u in (("server up", url), ("server down", down_url)):
            done = subprocess.run(
                [sys.executable, "-c", COMMAND_TIMING, str(a.commands), str(a.rounds)],
                env=env_for(homes["up" if u == url else "down"], u),
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            out = json.loads(done.stdout)
            print(f"  {name}:")
            print(f"    with s.command(name, args): {percentiles(out['command'])}")
            print(f"    s.record(name, args, …):    {percentiles(out['record'])}")
            print(f"    an empty `with` (baseline):  {percentiles(out['empty_with'])}")

        cells = "".join(f"x = sum(range({i % 50}))\n" for i in range(a.cells)) + "exit\n"
        print(f"\n2. IPython, {a.cells} cells from a pipe, {a.runs} runs each (interleaved, after a warm-up round)")
        configs = {
            "untracked": (env_for(homes["untracked"], url), False),
            "tracked, server up": (env_for(homes["up"], url, SESSION_BUDDY_COMPONENT="bench-ipython"), True),
            "tracked, server down": (env_for(homes["down"], down_url, SESSION_BUDDY_COMPONENT="bench-ipython"), True),
        }
        times: dict[str, list[float]] = {k: [] for k in configs}
        for run in range(a.runs + 1):
            for name, (env, tracked) in configs.items():
                elapsed = ipython_run(env, cells, tracked)
                if run > 0:
                    times[name].append(elapsed)
        median = {k: statistics.median(v) for k, v in times.items()}
        for name, m in median.items():
            spread = f"{min(times[name]):.3f}–{max(times[name]):.3f} s"
            print(f"  {name:22} median {m:.3f} s ({spread})")
        base_m = median["untracked"]
        for name in ("tracked, server up", "tracked, server down"):
            per_cell = (median[name] - base_m) / a.cells * 1e6
            print(f"  {name} / untracked: {median[name] / base_m:.3f} ({per_cell:+.0f} µs a cell, start and end included)")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        # The detached senders see their buffer gone and stop.
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
