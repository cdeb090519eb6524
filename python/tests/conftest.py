"""Fixtures: a real `session-buddy serve` on a free loopback port, a fresh
$SESSION_BUDDY_HOME per test, and tracked Python programs run as real processes.

The server binary is $SESSION_BUDDY_BIN, else `session-buddy` on PATH, else the workspace's
debug build (target/debug/session-buddy). Every wait polls for a condition with a deadline;
no test sleeps and hopes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]


def server_binary() -> str:
    explicit = os.environ.get("SESSION_BUDDY_BIN")
    if explicit:
        return explicit
    found = shutil.which("session-buddy")
    if found:
        return found
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    candidate = target / "debug" / "session-buddy"
    if candidate.exists():
        return str(candidate)
    pytest.fail(
        "no session-buddy binary: set SESSION_BUDDY_BIN, put it on PATH, or "
        "`cargo build -p session-buddy --bin session-buddy`",
        pytrace=False,
    )


def clean_env(home: Path, url: str | None) -> dict[str, str]:
    """This environment without the operator's Session-Buddy settings, for `home` and `url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_BUDDY_", "ONEIRIC_"))}
    env["SESSION_BUDDY_HOME"] = str(home)
    if url is not None:
        env["SESSION_BUDDY_URL"] = url
    env["NO_COLOR"] = "1"
    env["TZ"] = "UTC"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 0.1) -> Any:
    """Polls `check` until it returns something truthy; fails after `timeout` with the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`session-buddy serve` on loopback with its database in the test's home."""

    def __init__(self, binary: str, home: Path, port: int = 0, extra: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.home = home
        self.proc = subprocess.Popen(
            [binary, "serve", "--port", str(port), *extra],
            env=clean_env(home, None),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        found: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                if "listening on " in line and not found:
                    found.append(line.split("listening on ", 1)[1].split()[0])
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60) or not found:
            self.stop()
            pytest.fail("the server did not start listening")
        self.url = found[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args],
            env=clean_env(self.home, self.url),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def json(self, *args: str) -> Any:
        done = self.cli(*args, "--format", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def sessions(self, *filters: str) -> list[dict[str, Any]]:
        return self.json("list-sessions", "--utc", "--limit", "1000", *filters)

    def events(self, session_id: str) -> list[dict[str, Any]]:
        return self.json("list-events", "--session-id", session_id, "--limit", "1000")

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as r:
            text = r.read().decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0


class Program:
    """A Python program run with the package, as its own process."""

    def __init__(self, home: Path, url: str | None) -> None:
        self.home = home
        self.url = url

    def env(self, **extra: str) -> dict[str, str]:
        env = clean_env(self.home, self.url)
        env.update(extra)
        return env

    def popen(self, code: str, **kwargs: Any) -> subprocess.Popen[str]:
        env = self.env(**kwargs.pop("env", {}))
        return subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=env,
            cwd=str(self.home),
            text=True,
            **kwargs,
        )

    def run(self, code: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=self.env(**env),
            cwd=str(self.home),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture
def home() -> Any:
    # Removed at the end: a detached sender still lingering for it sees its buffer gone and stops.
    path = Path(tempfile.mkdtemp(prefix="sb-py-"))
    (path / "home").mkdir()
    yield path / "home"
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def binary() -> str:
    return server_binary()


@pytest.fixture
def server(binary: str, home: Path) -> Any:
    s = Server(binary, home)
    yield s
    s.stop()


@pytest.fixture
def program(home: Path, server: Server) -> Program:
    return Program(home, server.url)
