"""Delivery through the Rust client's buffer and sender: a server that is down or hangs costs
the program nothing and gets everything later; SIGKILL and os._exit leave the session to the
reaper; a fork()ed child sends nothing twice."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

from conftest import Program, Server, free_port, wait_for

# 50 commands, started and ended, timed inside the program (interpreter start-up aside).
TIMED = """
    import json, sys, time
    import session_buddy_client

    t0 = time.perf_counter()
    s = session_buddy_client.session("fastblocks")
    for i in range(50):
        with s.command("build", f"page {i}"):
            pass
    s.end()
    print(json.dumps({"id": s.session_id, "tracked_s": time.perf_counter() - t0}))
"""

# Every HTTP call is bounded by the client's request timeout (2 s): one call the program
# waited for would cost it at least that.
REQUEST_TIMEOUT_S = 2.0


def timed_run(program: Program) -> tuple[dict, float]:
    t0 = time.monotonic()
    done = program.run(TIMED)
    wall = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), wall


def test_server_down_or_hanging_costs_the_program_nothing_and_events_arrive_later(binary: str, home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Up: the reference run, against a server of its own on another home.
    reference_home = home.parent / "reference"
    reference_home.mkdir()
    reference = Server(binary, reference_home)
    try:
        up, up_wall = timed_run(Program(reference_home, reference.url))
    finally:
        reference.stop()

    # Down: nothing listens on the port.
    down, down_wall = timed_run(Program(home, url))
    # Hanging: a listener that never accepts; connections complete and are never answered.
    hang = socket.socket()
    hang.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hang.bind(("127.0.0.1", port))
    hang.listen(1)
    try:
        hanging, hanging_wall = timed_run(Program(home, url))
    finally:
        hang.close()

    for run, wall in ((down, down_wall), (hanging, hanging_wall)):
        assert run["tracked_s"] < REQUEST_TIMEOUT_S / 2, (run, up)
        # The exit waits on nothing either: no call, no join of the sender.
        assert wall < up_wall + REQUEST_TIMEOUT_S * 0.75, (wall, up_wall)

    # The server comes back on the same address: the detached sender delivers what the two
    # runs buffered, without any program running.
    server = Server(binary, home, port=port)
    try:
        def both_ended() -> list[dict] | None:
            sessions = {s["session_id"]: s for s in server.sessions("--component", "fastblocks")}
            wanted = [sessions.get(down["id"]), sessions.get(hanging["id"])]
            return wanted if all(s and s["status"] == "ended" and s["command_count"] == 50 for s in wanted) else None

        for s in wait_for("both buffered sessions, delivered", both_ended, timeout=120):
            assert s["error_count"] == 0
        status = server.cli("event-buffer", "status")
        assert status.returncode == 0, status.stderr
    finally:
        server.stop()


def test_sigkill_and_os_exit_leave_the_session_to_the_reaper(binary: str, home: Path) -> None:
    server = Server(binary, home, extra=("--session-ttl", "2s"))
    program = Program(home, server.url)
    # Each keeps its session alive with a command every 0.2 s until it is stopped.
    code = """
        import os, sys, threading, time
        import session_buddy_client
        s = session_buddy_client.session(COMPONENT)
        print(s.session_id, flush=True)
        def ticks():
            while True:
                s.record("tick")
                time.sleep(0.2)
        threading.Thread(target=ticks, daemon=True).start()
        sys.stdin.readline()
        os._exit(3)
    """
    try:
        killed = program.popen(code.replace("COMPONENT", '"akosha"'), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        exited = program.popen(code.replace("COMPONENT", '"oneiric"'), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert killed.stdout is not None and exited.stdout is not None and exited.stdin is not None
        ids = {"akosha": killed.stdout.readline().strip(), "oneiric": exited.stdout.readline().strip()}

        def busy() -> dict | None:
            # Longer than the TTL, and still active: alive while it sends.
            sessions = {s["session_id"]: s for s in server.sessions()}
            got = [sessions.get(i) for i in ids.values()]
            ok = all(s and s["status"] == "active" and s["command_count"] >= 20 for s in got)
            return sessions if ok else None

        wait_for("both sessions active past the TTL", busy, timeout=90)
        killed.send_signal(signal.SIGKILL)
        exited.stdin.write("\n")
        exited.stdin.flush()
        assert killed.wait(30) == -signal.SIGKILL
        assert exited.wait(30) == 3

        def abandoned() -> list[dict] | None:
            sessions = {s["session_id"]: s for s in server.sessions()}
            got = [sessions.get(i) for i in ids.values()]
            return got if all(s and s["status"] == "abandoned" for s in got) else None

        for s in wait_for("both sessions, abandoned", abandoned, timeout=90):
            assert s["end_reason"] == "heartbeat_timeout"
            ends = [e for e in server.events(s["session_id"]) if e["event_type"] == "session_end"]
            assert ends == []
    finally:
        for proc in ("killed", "exited"):
            p = locals().get(proc)
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        server.stop()


def test_a_forked_child_sends_nothing_twice_and_does_not_end_the_parents_session(server: Server, program: Program) -> None:
    proc = program.popen(
        """
        import json, os, sys
        import session_buddy_client

        s = session_buddy_client.session("mahavishnu")
        s.record("before-fork")
        pid = os.fork()
        if pid == 0:
            # The parent's session is not the child's: it records nothing there and does
            # not end it when it exits (atexit runs here too).
            s.record("in-child")
            with session_buddy_client.session("akosha") as own:
                own.record("child-work")
            print(json.dumps({"child": own.session_id}), flush=True)
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        s.record("after-fork")
        print(json.dumps({"parent": s.session_id, "child_exit": os.waitstatus_to_exitcode(status)}), flush=True)
        sys.stdin.readline()
        s.end()
        """,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    ids: dict = {}
    while "parent" not in ids:
        line = proc.stdout.readline()
        assert line, "the program ended early"
        ids.update(json.loads(line))
    assert ids["child_exit"] == 0

    def commands_of(session_id: str) -> list[str]:
        return [e["payload"]["command"] for e in server.events(session_id) if e["event_type"] == "command"]

    # Everything so far delivered before the parent ends, so no call is in flight then (a
    # process that ends during one leaves its batch to be sent again: at least once).
    wait_for(
        "the parent's commands and the child's session",
        lambda: commands_of(ids["parent"]) == ["before-fork", "after-fork"]
        and any(s["session_id"] == ids["child"] and s["status"] == "ended" for s in server.sessions()),
    )
    proc.stdin.write("\n")
    proc.stdin.close()
    assert proc.wait(30) == 0

    def settled() -> dict | None:
        sessions = {s["session_id"]: s for s in server.sessions()}
        got = [sessions.get(ids["parent"]), sessions.get(ids["child"])]
        return sessions if all(s and s["status"] == "ended" for s in got) else None

    sessions = wait_for("both sessions, ended", settled)
    assert len(sessions) == 2

    parent = server.events(ids["parent"])
    kinds = [(e["event_type"], e["payload"].get("command")) for e in parent]
    assert kinds == [
        ("session_start", None),
        ("command", "before-fork"),
        ("command", "after-fork"),
        ("session_end", None),
    ]
    child = server.events(ids["child"])
    assert [(e["event_type"], e["payload"].get("command")) for e in child] == [
        ("session_start", None),
        ("command", "child-work"),
        ("session_end", None),
    ]
    # Every event reached the server once: none was sent again by the other process.
    assert server.metric('session_buddy_ingest_events_total{status="duplicate"}') == 0
    assert server.metric('session_buddy_ingest_events_total{status="accepted"}') == len(parent) + len(child)
