"""The process's tracked session, shared by every face of the package.

A process records one session at a time. The first start (``SessionEventEmitter``,
``session()``, the IPython extension) begins it; a start while it is active joins it, so a
program that uses the emitter and loads the extension records one session, not two. Each
face that joined lets go when it is done; the session ends when the last one does, or when
the process ends: normally or by an unhandled exception (``atexit``), or by SIGTERM or SIGHUP
(a handler installed only where the program has none). ``os._exit`` and SIGKILL end nothing:
the server's reaper marks the session abandoned, as it does for the Rust shells. A
``fork()``ed child lets go of its parent's session without writing to it.

Nothing here raises into the program for a tracking failure: it logs one warning (logger
``session_buddy_client``) and the program goes on untracked.
"""

from __future__ import annotations

import _thread
import atexit
import os
import sys
from collections.abc import Mapping
TYPE_CHECKING = False  # typing is not imported at run time (its import costs milliseconds)

from . import _native

if TYPE_CHECKING:
    from typing import Any

# Imported when first needed (logging, json, signal): importing the package costs a program
# as little start-up as it can.

# Reentrant: a signal handler may run while the main thread holds it.
_lock = _thread.RLock()
_warned = False
_current: "Handle | None" = None
_hooks_installed = False
# How the process is ending, when an unhandled exception says so: (reason, exit code, signal, error).
_ending: "tuple[str, int | None, str | None, str | None] | None" = None
_previous_excepthook = None

# The end of an exception message kept in the end's metadata (redacted first).
_ERROR_MAX = 1024

RUNTIME = "python {}.{}.{}".format(*sys.version_info[:3])


def log() -> Any:
    import logging

    return logging.getLogger("session_buddy_client")


def warn_once(message: str, *args: Any) -> None:
    """One warning per process about tracking; later ones go to debug."""
    global _warned
    if _warned:
        log().debug("session tracking: " + message, *args)
        return
    _warned = True
    log().warning("session tracking: " + message, *args)


def metadata_json(metadata: Mapping[str, Any] | None) -> str | None:
    """``metadata`` as compact JSON (values JSON cannot hold as their ``str``), or None."""
    if not metadata:
        return None
    import json

    try:
        return json.dumps(dict(metadata), default=str, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        warn_once("metadata cannot be sent (%s); it is left out", e)
        return None


def describe_exception(exc: BaseException | None) -> str | None:
    """``Type: message`` (the client redacts it before it is buffered)."""
    if exc is None:
        return None
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def error_metadata(error: str | None) -> dict[str, str] | None:
    """The end's metadata for a session that ended by an exception: its redacted text."""
    return {"error": _native.redact(error)[:_ERROR_MAX]} if error else None


class Untracked:
    """Stands in for a tracker when even starting one failed: every call does nothing."""

    session_id = None
    ended = True
    turned_off = False
    notes: list[str] = []

    def __init__(self, reason: str) -> None:
        self.disabled_reason = reason

    def command(self, *args: Any) -> None:
        pass

    def heartbeat(self) -> None:
        pass

    def end(self, *args: Any) -> bool:
        return False

    def forget_after_fork(self) -> None:
        pass

    def banner_state(self) -> str:
        return f"✗ Disabled ({self.disabled_reason})"


class Handle:
    """The process's session, and how many faces hold it."""

    __slots__ = ("tracker", "holders", "end_metadata")

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker
        self.holders = 1
        self.end_metadata: dict[str, Any] = {}

    @property
    def session_id(self) -> str | None:
        return self.tracker.session_id

    def live(self) -> bool:
        """Tracked, not ended, and this process's (not a forked child's copy)."""
        return not self.tracker.ended


def acquire(
    component: str,
    shell_type: str,
    *,
    session_type: str | None = None,
    component_version: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Handle:
    """Joins the process's active session, or starts one (one local write, no network)."""
    global _current
    with _lock:
        current = _current
        if current is not None and current.live():
            current.holders += 1
            return current
        tracker = _native.start(
            component,
            shell_type,
            session_type,
            component_version,
            RUNTIME,
            metadata_json(metadata),
            sys.executable or None,
        )
        for note in tracker.notes:
            warn_once("%s", note)
        handle = Handle(tracker)
        if tracker.session_id is None:
            if not tracker.turned_off:
                warn_once("%s; this session is not recorded", tracker.disabled_reason)
            return handle
        _current = handle
        _install_hooks()
        return handle


def release(
    handle: Handle,
    reason: str = "exit",
    exit_code: int | None = None,
    signal_name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> bool:
    """One holder lets go; the last one ends the session. True unless it had ended already."""
    return _let_go(handle, True, reason, exit_code, signal_name, metadata)


def end(
    handle: Handle,
    reason: str = "exit",
    exit_code: int | None = None,
    signal_name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> bool:
    """Ends the session whoever else holds it (the shell it belongs to is over)."""
    return _let_go(handle, False, reason, exit_code, signal_name, metadata)


def _let_go(
    handle: Handle,
    one_holder: bool,
    reason: str,
    exit_code: int | None,
    signal_name: str | None,
    metadata: Mapping[str, Any] | None,
) -> bool:
    with _lock:
        if not handle.live():
            return False
        if metadata:
            handle.end_metadata.update(metadata)
        if one_holder:
            handle.holders -= 1
            if handle.holders > 0:
                return True
        return _end(handle, reason, exit_code, signal_name)


def _end(handle: Handle, reason: str, exit_code: int | None, signal_name: str | None) -> bool:
    global _current
    handle.holders = 0
    if _current is handle:
        _current = None
    return handle.tracker.end(reason, exit_code, signal_name, metadata_json(handle.end_metadata))


def current() -> Handle | None:
    """The process's active session, if any."""
    handle = _current
    return handle if handle is not None and handle.live() else None


def _end_current(reason: str, exit_code: int | None, signal_name: str | None, error: str | None) -> None:
    handle = _current
    if handle is None:
        return
    try:
        end(handle, reason, exit_code, signal_name, error_metadata(error))
    except Exception as e:  # never into the program, least of all at exit
        warn_once("cannot end the session: %s", e)


def _at_exit() -> None:
    reason, exit_code, signal_name, error = _ending or ("exit", None, None, None)
    _end_current(reason, exit_code, signal_name, error)


def _excepthook(exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
    global _ending
    try:
        if issubclass(exc_type, KeyboardInterrupt):
            # Python ends by SIGINT then: the shell sees 130.
            _ending = ("sigint", 130, "SIGINT", None)
        else:
            _ending = ("error", 1, None, describe_exception(exc))
    except Exception:
        pass
    hook = _previous_excepthook or sys.__excepthook__
    hook(exc_type, exc, tb)


# SIGTERM and SIGHUP: (reason, name).
_SIGNALS = {15: ("sigterm", "SIGTERM"), 1: ("sighup", "SIGHUP")}


def _on_signal(signum: int, frame: Any) -> None:
    """SIGTERM/SIGHUP where the program had no handler: end the session, then die of it."""
    import signal

    reason, name = _SIGNALS.get(signum, ("exit", f"signal {signum}"))
    _end_current(reason, 128 + signum, name, None)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _after_fork_in_child() -> None:
    # No lock: a thread of the parent may have held it, and that thread is not here.
    global _current, _ending
    handle = _current
    _current = None
    _ending = None
    _native.after_fork_in_child()
    if handle is not None:
        handle.tracker.forget_after_fork()


def _install_hooks() -> None:
    """Once per process, at the first tracked session."""
    global _hooks_installed, _previous_excepthook
    if _hooks_installed:
        return
    _hooks_installed = True
    import signal

    atexit.register(_at_exit)
    _previous_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, _on_signal)
        except (ValueError, OSError) as e:  # ValueError: not the main thread
            log().debug("session tracking: SIGTERM/SIGHUP not watched: %s", e)
            return


os.register_at_fork(after_in_child=_after_fork_in_child)
