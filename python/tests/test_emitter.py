"""The original's API unchanged, the context-manager face, and how a program's end ends its
session: through real processes, a real server, `session-buddy list-sessions`/`list-events`."""

from __future__ import annotations

import json
import signal
import subprocess

from conftest import Program, Server, wait_for


def commands(server: Server, session_id: str) -> list[dict]:
    return [e["payload"] for e in server.events(session_id) if e["event_type"] == "command"]


def ended(server: Server, component: str) -> list[dict] | None:
    sessions = server.sessions("--component", component)
    return sessions if sessions and all(s["status"] == "ended" for s in sessions) else None


def test_original_api_unchanged_records_an_ended_session_with_its_duration(server: Server, program: Program) -> None:
    # As oneiric's AdminShell calls the emitter (§3–4 of the upstream description), awaited.
    done = program.run(
        """
        import asyncio, json, time
        from session_buddy_client import SessionEventEmitter

        async def main():
            emitter = SessionEventEmitter(component_name="mahavishnu")
            started = time.time()
            session_id = await emitter.emit_session_start(
                shell_type="MahavishnuShell",
                metadata={"component_version": "2.4.0", "adapters": ["workflow", "pool"]},
            )
            time.sleep(1.5)
            ok = await emitter.emit_session_end(session_id, metadata={"duration_seconds": None})
            print(json.dumps({"id": session_id, "ok": ok, "elapsed": time.time() - started,
                              "available": emitter.available}))

        asyncio.run(main())
        """
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["ok"] is True and out["available"] is True
    assert out["id"].startswith("mahavishnu-")

    (s,) = wait_for("the session, ended", lambda: ended(server, "mahavishnu"))
    assert s["session_id"] == out["id"]
    assert s["shell_type"] == "MahavishnuShell"
    assert s["component_version"] == "2.4.0"
    assert s["metadata"] == {"component_version": "2.4.0", "adapters": ["workflow", "pool"]}
    assert s["runtime_version"].startswith("python 3.")
    assert s["end_reason"] == "exit"
    # Start to end as the program measured it (both times are the program's own).
    assert 1.5 <= s["duration_seconds"] <= out["elapsed"] + 0.05, (s, out)

    listed = server.cli("list-sessions", "--type", "admin_shell")
    assert listed.returncode == 0, listed.stderr
    assert out["id"] in listed.stdout and "ended" in listed.stdout

    end = [e for e in server.events(out["id"]) if e["event_type"] == "session_end"]
    assert len(end) == 1 and end[0]["payload"]["metadata"] == {"duration_seconds": None}


def test_plain_call_variants_and_an_unknown_id(server: Server, program: Program) -> None:
    done = program.run(
        """
        import json
        from session_buddy_client import SessionEventEmitter

        emitter = SessionEventEmitter("oneiric")
        session_id = emitter.emit_session_start_sync("OneiricShell")
        print(json.dumps([session_id, emitter.emit_session_end_sync("no-such-session"),
                          emitter.emit_session_end_sync(""),
                          emitter.emit_session_end_sync(session_id),
                          emitter.emit_session_end_sync(session_id)]))
        """
    )
    assert done.returncode == 0, done.stderr
    session_id, unknown, empty, first, again = json.loads(done.stdout)
    assert (unknown, empty, first, again) == (False, False, True, False)
    (s,) = wait_for("the session, ended", lambda: ended(server, "oneiric"))
    assert s["session_id"] == session_id


def test_context_manager_records_commands_with_success_and_failure(server: Server, program: Program) -> None:
    done = program.run(
        """
        import asyncio
        import session_buddy_client

        with session_buddy_client.session("crackerjack", "CrackerjackShell") as s:
            with s.command("lint", "--fix"):
                pass
            try:
                with s.command("test", 'connect(password="hunter2")'):
                    raise ValueError("3 tests failed")
            except ValueError:
                pass

            @s.command("build")
            def build(target, fast=False):
                return target

            @s.command("publish")
            def publish():
                raise RuntimeError("upload refused")

            @s.command("fetch")
            async def fetch(n):
                await asyncio.sleep(0)
                return n

            assert build("wheel", fast=True) == "wheel"
            try:
                publish()
            except RuntimeError:
                pass
            assert asyncio.run(fetch(3)) == 3
        print(s.session_id)
        """
    )
    assert done.returncode == 0, done.stderr
    session_id = done.stdout.strip()

    (s,) = wait_for("the session, ended", lambda: ended(server, "crackerjack"))
    assert s["session_id"] == session_id
    assert s["command_count"] == 5 and s["error_count"] == 2
    got = [(c["command"], c.get("args"), c["success"], c.get("error")) for c in commands(server, session_id)]
    assert got == [
        ("lint", "--fix", True, None),
        ("test", 'connect(password="[REDACTED]")', False, "ValueError: 3 tests failed"),
        ("build", "'wheel', fast=True", True, None),
        ("publish", None, False, "RuntimeError: upload refused"),
        ("fetch", "3", True, None),
    ]
    assert all(c["duration_ms"] >= 0 for c in commands(server, session_id))


def test_an_unhandled_exception_ends_the_session_as_an_error(server: Server, program: Program) -> None:
    done = program.run(
        """
        import session_buddy_client
        s = session_buddy_client.session("akosha")
        s.record("aggregate")
        raise KeyError("token=abc123 missing")
        """
    )
    assert done.returncode == 1
    assert "KeyError" in done.stderr  # the program's traceback, as without tracking
    (s,) = wait_for("the session, ended", lambda: ended(server, "akosha"))
    assert (s["end_reason"], s["exit_code"]) == ("error", 1)
    end = [e for e in server.events(s["session_id"]) if e["event_type"] == "session_end"]
    assert end[0]["payload"]["metadata"] == {"error": "KeyError: 'token=[REDACTED] missing'"}


def test_sigterm_ends_the_session_and_the_program_still_dies_of_it(server: Server, program: Program) -> None:
    proc = program.popen(
        """
        import sys, session_buddy_client
        s = session_buddy_client.session("oneiric")
        print(s.session_id, flush=True)
        sys.stdin.readline()
        """,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    session_id = proc.stdout.readline().strip()
    wait_for("the session, active", lambda: server.sessions("--component", "oneiric"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == -signal.SIGTERM
    (s,) = wait_for("the session, ended", lambda: ended(server, "oneiric"))
    assert s["session_id"] == session_id
    assert (s["end_reason"], s["exit_code"]) == ("sigterm", 143)


def test_a_program_with_its_own_sigterm_handler_keeps_it(server: Server, program: Program) -> None:
    proc = program.popen(
        """
        import signal, sys, session_buddy_client
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
        s = session_buddy_client.session("fastblocks")
        print(s.session_id, flush=True)
        sys.stdin.readline()
        """,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    wait_for("the session, active", lambda: server.sessions("--component", "fastblocks"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 7
    (s,) = wait_for("the session, ended", lambda: ended(server, "fastblocks"))
    assert s["end_reason"] == "exit"


def test_tracking_off_or_an_invalid_name_never_raises(server: Server, program: Program) -> None:
    code = """
        import json, logging, session_buddy_client
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
        s = session_buddy_client.session(NAME)
        with s.command("x"):
            pass
        e = session_buddy_client.SessionEventEmitter(NAME)
        print(json.dumps([s.session_id, s.tracked, e.emit_session_start_sync("Shell"), e.available]))
        """
    off = program.run(code.replace("NAME", '"oneiric"'), SESSION_BUDDY_TRACKING="off")
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout) == [None, False, None, False]
    assert off.stderr == ""  # turned off on purpose: nothing to warn about

    bad = program.run(code.replace("NAME", '"no spaces allowed"'))
    assert bad.returncode == 0, bad.stderr
    assert json.loads(bad.stdout) == [None, False, None, False]
    warnings = [line for line in bad.stderr.splitlines() if line.startswith("session_buddy_client:")]
    assert len(warnings) == 1 and "invalid component name" in warnings[0], bad.stderr
    assert server.sessions() == []
