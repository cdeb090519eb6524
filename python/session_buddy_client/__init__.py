"""Session-Buddy session tracking for Python programs.

The Rust client of this repository as a module: events go to the same journal and buffer
(``$SESSION_BUDDY_HOME``) and the same background sender delivers them, so a Python program
never waits on the network and keeps its events through an outage. Two faces:

The original's emitter, unchanged for code written against it::

    from session_buddy_client import SessionEventEmitter

    emitter = SessionEventEmitter(component_name="mahavishnu")
    session_id = await emitter.emit_session_start(shell_type="MahavishnuShell", metadata={...})
    ...
    await emitter.emit_session_end(session_id, metadata={...})

(``emit_session_start_sync`` / ``emit_session_end_sync`` without ``await``), and a Pythonic
one::

    import session_buddy_client

    with session_buddy_client.session("mahavishnu") as s:
        with s.command("deploy", "prod"):
            deploy("prod")

        @s.command("migrate")
        def migrate(db): ...

IPython: ``%load_ext session_buddy_client.ipython`` (see that module).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
TYPE_CHECKING = False  # typing is not imported at run time (its import costs milliseconds)

from . import _native, _process
from ._process import warn_once

if TYPE_CHECKING:
    from typing import Any, Callable, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "Command",
    "Session",
    "SessionEventEmitter",
    "banner_line",
    "current_session",
    "redact",
    "session",
]

_perf_counter = time.perf_counter


def _shown(value: Any) -> str:
    """A decorated function's argument as the command's arguments show it (at most ~80
    characters of its repr)."""
    import reprlib

    shown = reprlib.Repr()
    shown.maxstring = shown.maxother = 80
    return shown.repr(value)


def redact(text: str) -> str:
    """``text`` with secrets replaced by ``[REDACTED]``: the rules applied to every
    command's arguments and error before they are buffered."""
    return _native.redact(text)


def banner_line() -> str:
    """``Session Tracking: ✓ Enabled (connected, 3 min ago)`` as the Rust shells print it:
    the last delivery result recorded on this host (never a network call)."""
    handle = _process.current()
    try:
        state = handle.tracker.banner_state() if handle else _native.banner_state()
    except Exception as e:
        warn_once("cannot read the tracking state: %s", e)
        state = f"✗ Disabled ({e})"
    return f"Session Tracking: {state}"


def _default_shell_type() -> str:
    script = sys.argv[0] if sys.argv and sys.argv[0] else ""
    name = os.path.basename(script)
    return name if name and name != "-c" else "python"


def _exit_of(exc_type: type[BaseException] | None, exc: BaseException | None) -> tuple[str, int | None, str | None, str | None]:
    """(reason, exit code, signal, error) of a block that ended with ``exc``."""
    if exc_type is None:
        return ("exit", None, None, None)
    if issubclass(exc_type, SystemExit):
        code = exc.code if isinstance(exc, SystemExit) else None
        return ("exit", code if isinstance(code, int) else (0 if code is None else 1), None, None)
    if issubclass(exc_type, KeyboardInterrupt):
        return ("sigint", 130, "SIGINT", None)
    return ("error", 1, None, _process.describe_exception(exc))


class Command:
    """Times one command of a session and records it: success, or the exception.

    A context manager (``with s.command("deploy", "prod"):``) and a decorator
    (``@s.command("deploy")``; the call's arguments are the command's unless ``args`` is
    given). The exception is recorded and raised on, never swallowed.
    """

    __slots__ = ("_session", "name", "args", "_started")

    def __init__(self, session: "Session", name: str, args: str | None = None) -> None:
        self._session = session
        self.name = name
        self.args = args
        self._started = 0.0

    def __enter__(self) -> "Command":
        self._started = _perf_counter()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        duration = _perf_counter() - self._started
        if exc_type is None:
            self._session.record(self.name, self.args or "", success=True, duration=duration)
        else:
            self._session.record(
                self.name,
                self.args or "",
                success=False,
                duration=duration,
                error=_process.describe_exception(exc) or exc_type.__name__,
            )
        return False

    async def __aenter__(self) -> "Command":
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return self.__exit__(exc_type, exc, tb)

    def _for_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> "Command":
        if self.args is not None:
            shown = self.args
        else:
            parts = [_shown(a) for a in args]
            parts += [f"{k}={_shown(v)}" for k, v in kwargs.items()]
            shown = ", ".join(parts)
        return Command(self._session, self.name, shown)

    def __call__(self, func: F) -> F:
        import functools
        import inspect

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self._for_call(args, kwargs):
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._for_call(args, kwargs):
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]


class Session:
    """One tracked session of this process (or an untracked one: then every call does
    nothing). ``with`` ends it at the end of the block; so does :meth:`end`, and the end of
    the process."""

    __slots__ = ("_handle", "_released", "component")

    def __init__(self, handle: _process.Handle, component: str) -> None:
        self._handle = handle
        self._released = False
        self.component = component

    @property
    def session_id(self) -> str | None:
        """The session's id (known at once; the server has it once delivered), or None."""
        return self._handle.session_id

    id = session_id

    @property
    def tracked(self) -> bool:
        """Whether this session is being recorded."""
        return self._handle.live()

    @property
    def disabled_reason(self) -> str | None:
        """Why it is not recorded (tracking off, an invalid component name, …)."""
        return self._handle.tracker.disabled_reason

    def command(self, name: str, args: str | None = None) -> Command:
        """A context manager and decorator that times a block and records it as a command."""
        return Command(self, name, args)

    def record(
        self,
        name: str,
        args: str = "",
        *,
        success: bool = True,
        duration: float = 0.0,
        error: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        """Records one command that has run (``duration`` in seconds)."""
        try:
            self._handle.tracker.command(str(name), str(args), bool(success), float(duration), error, exit_code)
        except Exception as e:
            warn_once("cannot record a command: %s", e)

    def heartbeat(self) -> None:
        """Records a heartbeat now (one is recorded every 30 s anyway)."""
        try:
            self._handle.tracker.heartbeat()
        except Exception as e:
            warn_once("cannot record a heartbeat: %s", e)

    def end(
        self,
        reason: str = "exit",
        *,
        exit_code: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> bool:
        """Lets go of the session; it ends unless another face of this process still holds it.
        Idempotent."""
        if self._released:
            return False
        self._released = True
        try:
            return _process.release(self._handle, reason, exit_code, None, metadata)
        except Exception as e:
            warn_once("cannot end the session: %s", e)
            return False

    def banner_line(self) -> str:
        """``Session Tracking: …`` for this session, as the Rust shells print it."""
        try:
            return f"Session Tracking: {self._handle.tracker.banner_state()}"
        except Exception as e:
            warn_once("cannot read the tracking state: %s", e)
            return f"Session Tracking: ✗ Disabled ({e})"

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        reason, exit_code, _signal, error = _exit_of(exc_type, exc)
        self.end(reason, exit_code=exit_code, metadata=_process.error_metadata(error))
        return False

    def __repr__(self) -> str:
        state = "tracked" if self.tracked else "not tracked"
        return f"<session_buddy_client.Session {self.component} {self.session_id} {state}>"


def session(
    component: str,
    shell_type: str | None = None,
    *,
    session_type: str | None = None,
    component_version: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Session:
    """Starts (or joins) this process's session of ``component``: one local write, no network.

    ``shell_type`` defaults to the script's name; ``session_type`` to ``admin_shell``.
    """
    try:
        handle = _process.acquire(
            component,
            shell_type or _default_shell_type(),
            session_type=session_type,
            component_version=component_version,
            metadata=metadata,
        )
    except Exception as e:
        warn_once("cannot start the session: %s", e)
        handle = _process.Handle(_process.Untracked(str(e)))
    return Session(handle, component)


def current_session() -> Session | None:
    """The process's active session (started by any face), without joining it."""
    handle = _process.current()
    if handle is None:
        return None
    session = Session(handle, "")
    session._released = True  # not a holder: its end() lets go of nothing
    return session


class SessionEventEmitter:
    """The original's emitter (``oneiric.shell.session_tracker.SessionEventEmitter``),
    backed by the Rust client: ``emit_session_start`` writes the start to the local journal
    and returns the session id at once, whether the server is up or not; the background
    sender delivers it. ``session_buddy_path`` is accepted and unused (the original's MCP
    stdio server; events go to ``SESSION_BUDDY_URL``).
    """

    def __init__(self, component_name: str, session_buddy_path: str | None = None) -> None:
        self.component_name = component_name
        self.session_buddy_path = session_buddy_path or os.environ.get("SESSION_BUDDY_PATH")
        #: True once a session is recorded (durably, locally; delivery follows).
        self.available = False
        self._sessions: dict[str, _process.Handle] = {}
        self._closed = False

    def emit_session_start_sync(self, shell_type: str, metadata: dict[str, Any] | None = None) -> str | None:
        """Starts (or joins) this process's session; its id, or None when not tracked."""
        if self._closed:
            return None
        try:
            version = metadata.get("component_version") if isinstance(metadata, Mapping) else None
            handle = _process.acquire(
                self.component_name,
                shell_type,
                component_version=version if isinstance(version, str) and version != "unknown" else None,
                metadata=metadata if isinstance(metadata, Mapping) else None,
            )
        except Exception as e:
            warn_once("cannot start the session: %s", e)
            return None
        session_id = handle.session_id
        self.available = session_id is not None
        if session_id is None:
            return None
        if session_id in self._sessions:
            _process.release(handle)  # one hold per emitter and session
        self._sessions[session_id] = handle
        return session_id

    def emit_session_end_sync(self, session_id: str, metadata: dict[str, Any] | None = None) -> bool:
        """Ends the session this emitter started (unless another face of the process still
        holds it); False for an unknown or empty id."""
        if not session_id:
            return False
        handle = self._sessions.pop(session_id, None)
        if handle is None:
            return False
        try:
            return _process.release(handle, "exit", None, None, metadata if isinstance(metadata, Mapping) else None)
        except Exception as e:
            warn_once("cannot end the session: %s", e)
            return False

    async def emit_session_start(self, shell_type: str, metadata: dict[str, Any] | None = None) -> str | None:
        """``await``-able, as the original's: see :meth:`emit_session_start_sync`."""
        return self.emit_session_start_sync(shell_type, metadata)

    async def emit_session_end(self, session_id: str, metadata: dict[str, Any] | None = None) -> bool:
        """``await``-able, as the original's: see :meth:`emit_session_end_sync`."""
        return self.emit_session_end_sync(session_id, metadata)

    def close_sync(self) -> None:
        """No more sessions from this emitter (its open ones stay until ended or exit)."""
        self._closed = True

    async def close(self) -> None:
        """As the original's ``close()``."""
        self.close_sync()
