"""The IPython extension: a real IPython driven by piped input, and an oneiric-style
AdminShell (as the upstream description §4 has it) made tracked by one decorator line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Program, Server, wait_for
from session_buddy_client.ipython import command_name


def ipython(program: Program, cells: list[str], *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "IPython", "--ext", "session_buddy_client.ipython", "--colors=nocolor", *flags],
        input="\n".join(cells) + "\n",
        env=program.env(IPYTHONDIR=str(program.home / "ipython"), **env),
        cwd=str(program.home),
        capture_output=True,
        text=True,
        timeout=120,
    )


def the_session(server: Server, component: str) -> dict | None:
    sessions = server.sessions("--component", component)
    return sessions[0] if len(sessions) == 1 and sessions[0]["status"] == "ended" else None


def cells_of(server: Server, session_id: str) -> list[tuple]:
    return [
        (e["payload"]["command"], e["payload"].get("args"), e["payload"]["success"], e["payload"].get("error"))
        for e in server.events(session_id)
        if e["event_type"] == "command"
    ]


def test_an_ipython_session_by_piped_input_records_each_cell_and_ends_cleanly(server: Server, program: Program) -> None:
    done = ipython(
        program,
        [
            "import os",
            "total = 1 + 1",
            "def deploy(target, password=None): return target",
            "",
            'deploy("prod", password="hunter2")',
            "1/0",
            "%pwd",
            "exit",
        ],
        SESSION_BUDDY_COMPONENT="akosha",
    )
    assert done.returncode == 0, done.stderr
    assert "Session Tracking: ✓ Enabled (" in done.stdout
    assert "ZeroDivisionError" in done.stdout  # IPython's own traceback, untouched

    s = wait_for("the IPython session, ended", lambda: the_session(server, "akosha"))
    assert f"Session ID: {s['session_id']}" in done.stdout
    assert s["shell_type"] == "TerminalInteractiveShell"
    assert s["end_reason"] == "exit"
    assert cells_of(server, s["session_id"]) == [
        ("import", "import os", True, None),
        ("total", "total = 1 + 1", True, None),
        ("deploy", "def deploy(target, password=[REDACTED] return target", True, None),
        ("deploy", 'deploy("prod", password="[REDACTED]")', True, None),
        ("expression", "1/0", False, "ZeroDivisionError: division by zero"),
        ("%pwd", "%pwd", True, None),
    ]


def test_the_profile_config_names_the_component_and_can_record_whole_cells(server: Server, program: Program) -> None:
    done = ipython(
        program,
        ["for i in range(2):", "    print(i, 'token=s3cr3t')", "", "exit"],
        "--SessionBuddy.component=crackerjack",
        "--SessionBuddy.record_cell=True",
    )
    assert done.returncode == 0, done.stderr
    s = wait_for("the IPython session, ended", lambda: the_session(server, "crackerjack"))
    assert cells_of(server, s["session_id"]) == [
        ("range", "for i in range(2):\n    print(i, 'token=[REDACTED]')", True, None),
    ]


def test_the_emitter_and_the_extension_in_one_process_record_one_session(server: Server, program: Program) -> None:
    done = ipython(
        program,
        [
            "from session_buddy_client import SessionEventEmitter",
            'emitter = SessionEventEmitter("oneiric")',
            'sid = emitter.emit_session_start_sync("OneiricShell")',
            "emitter.emit_session_end_sync(sid)",
            "print('after the emitter let go')",
            "exit",
        ],
        SESSION_BUDDY_COMPONENT="oneiric",
    )
    assert done.returncode == 0, done.stderr
    s = wait_for("one session, ended", lambda: the_session(server, "oneiric"))
    assert [c[0] for c in cells_of(server, s["session_id"])] == [
        "import",
        "SessionEventEmitter",
        "emitter.emit_session_start_sync",
        "emitter.emit_session_end_sync",
        "print",
    ]


# oneiric's AdminShell as the upstream description (§4.1, §4.2) has it: the emitter created
# lazily in _notify_session_start, the start awaited with asyncio.run when no loop runs, the
# end from an atexit hook on a daemon thread, magics registered before the shell runs.
ADMIN_SHELL = '''
import asyncio, atexit, logging, threading
from IPython.terminal.embed import InteractiveShellEmbed
from IPython.terminal.ipapp import load_default_config

logger = logging.getLogger("oneiric.shell")

class AdminShell:
    def __init__(self, app, config=None):
        self.app = app
        self.config = config
        self.shell = None
        self.session_tracker = None
        self.session_id = None
        self.namespace = {"app": app, "asyncio": asyncio, "run": asyncio.run, "logger": logger}

    def _get_component_name(self):
        return None

    def _get_component_version(self):
        return "unknown"

    def _get_adapters_info(self):
        return []

    def _get_banner(self):
        return "\\nOneiric Admin Shell\\n" + "=" * 60

    def _register_magics(self):
        pass

    async def _notify_session_start(self):
        if self.session_tracker is None:
            try:
                from oneiric.shell.session_tracker import SessionEventEmitter
            except ImportError:
                logger.debug("SessionEventEmitter not available - session tracking disabled")
                return
            self.session_tracker = SessionEventEmitter(component_name=self._get_component_name() or "unknown")
        self.session_id = await self.session_tracker.emit_session_start(
            shell_type=self.__class__.__name__,
            metadata={"component_version": self._get_component_version(), "adapters": self._get_adapters_info()},
        )

    def _notify_session_start_async(self):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._notify_session_start())
        else:
            asyncio.create_task(self._notify_session_start())

    async def _notify_session_end(self):
        await self.session_tracker.emit_session_end(self.session_id, metadata={"duration_seconds": None})

    def _sync_session_end(self):
        if self.session_id and self.session_tracker:
            def run():
                loop = asyncio.new_event_loop()
                try:
                    loop.run_until_complete(self._notify_session_end())
                except (OSError, RuntimeError) as e:
                    logger.debug("Session end emission failed: %s", e)
                finally:
                    loop.close()
            threading.Thread(target=run, daemon=True).start()

    def start(self):
        config = load_default_config()
        config.TerminalInteractiveShell.colors = "nocolor"
        self.shell = InteractiveShellEmbed(
            config=config, banner1=self._get_banner(), user_ns=self.namespace, confirm_exit=False
        )
        self._notify_session_start_async()
        atexit.register(self._sync_session_end)
        self._register_magics()
        logger.info("Starting admin shell...")
        self.shell()
'''

MAHAVISHNU = '''
import session_buddy_client.ipython

@session_buddy_client.ipython.track_admin_shell
class MahavishnuShell(AdminShell):
    def __init__(self, app, config=None):
        super().__init__(app, config)
        self.namespace["ps"] = lambda: ["worker-1", "worker-2"]

    def _get_component_name(self):
        return "mahavishnu"

    def _get_component_version(self):
        return "3.1.0"

shell = MahavishnuShell(app="orchestrator")
START
print("shell returned; session", shell.session_id, flush=True)
'''

# As `oneiric shell` / `mahavishnu shell` run it: inside asyncio.run, where the AdminShell's
# start hook is only scheduled (create_task) and first runs after the shell has ended.
UNDER_A_LOOP = """
async def main():
    shell.start()
asyncio.run(main())
"""


@pytest.mark.parametrize("start", ["shell.start()", UNDER_A_LOOP], ids=["plain", "under-a-running-loop"])
def test_one_line_makes_an_admin_shell_tracked_one_session_with_its_cells(
    server: Server, program: Program, start: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", ADMIN_SHELL + MAHAVISHNU.replace("START", start)],
        input="ps()\napp\n1/0\nexit\n",
        env=program.env(IPYTHONDIR=str(program.home / "ipython")),
        cwd=str(program.home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Oneiric Admin Shell" in done.stdout
    assert "Session Tracking: ✓ Enabled (" in done.stdout

    s = wait_for("the shell's session, ended", lambda: the_session(server, "mahavishnu"))
    assert len(server.sessions()) == 1
    assert s["shell_type"] == "MahavishnuShell"
    if start == "shell.start()":
        # The AdminShell's own start hook ran first and named the session.
        assert f"shell returned; session {s['session_id']}" in done.stdout
        assert s["component_version"] == "3.1.0"
        assert s["metadata"] == {"component_version": "3.1.0", "adapters": []}
    else:
        # Its hook came too late (as upstream); the extension had started the session.
        assert "shell returned; session None" in done.stdout
    assert s["end_reason"] == "exit"
    assert cells_of(server, s["session_id"]) == [
        ("ps", "ps()", True, None),
        ("app", "app", True, None),
        ("expression", "1/0", False, "ZeroDivisionError: division by zero"),
    ]
    ends = [e for e in server.events(s["session_id"]) if e["event_type"] == "session_end"]
    assert len(ends) == 1


@pytest.mark.parametrize(
    ("cell", "command"),
    [
        ("deploy('prod')", "deploy"),
        ("result = ps()", "ps"),
        ("a, b = f(), g()", "f"),
        ("app.reload(settings)", "app.reload"),
        ("import os\nos.makedirs('x')", "os.makedirs"),
        ("total = 1 + 1", "total"),
        ("x += 1", "x"),
        ("import os", "import"),
        ("def deploy(target): return push(target)", "deploy"),
        ("class Config: pass", "Config"),
        ("workers", "workers"),
        ("1/0", "expression"),
        ("get_ipython().run_line_magic('timeit', 'f()')", "%timeit"),
        ("get_ipython().run_cell_magic('bash', '', 'ls')", "%%bash"),
        ("get_ipython().system('ls -l /tmp')", "!ls"),
        ("for i in range(3): deploy(i)", "range"),
        ("nodes[0].restart()", "nodes.restart"),
        ("def (", "def"),
    ],
)
def test_a_cell_is_named_by_its_first_called_or_assigned_name(cell: str, command: str) -> None:
    assert command_name(cell) == command
