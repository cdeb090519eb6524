"""IPython extension: the IPython session as a tracked session, each cell a command.

Load it with ``%load_ext session_buddy_client.ipython``, ``ipython --ext
session_buddy_client.ipython``, or in a profile's ``ipython_config.py``::

    c.InteractiveShellApp.extensions = ["session_buddy_client.ipython"]
    c.SessionBuddy.component = "mahavishnu"   # else $SESSION_BUDDY_COMPONENT, else the profile's name
    c.SessionBuddy.record_cell = False        # True: the whole cell as the arguments

Each executed cell becomes a ``command`` event: the first called (else assigned) name in the
cell as the command (``%magic`` and ``!cmd`` by their names), the cell's first line as its
arguments (redacted by the client: ``password="…"``, tokens, URLs with passwords), success from
the execution result, and the exception's type and message as the error. ``exit``/``quit``
are not recorded, as the Rust shells do not record their built-ins. Loading prints
``Session Tracking: …`` as the Rust shells' banner does. The session ends when the process
does (or SIGTERM/SIGHUP); an AdminShell's ends when its ``start()`` returns.

An oneiric ``AdminShell`` subclass is tracked, session and cells, with one line::

    @session_buddy_client.ipython.track_admin_shell
    class MahavishnuShell(AdminShell): ...
"""

from __future__ import annotations

import ast
import functools
import os
import time
from typing import Any, Callable

from traitlets import Bool, Unicode
from traitlets.config import Configurable

from . import SessionEventEmitter, _process
from ._process import warn_once

__all__ = ["SessionBuddy", "load_ipython_extension", "track_admin_shell", "unload_ipython_extension"]

# Cells that are the shell's own built-ins, not commands.
_BUILTINS = frozenset({"exit", "quit", "exit()", "quit()"})

_ATTR = "_session_buddy_tracking"


class SessionBuddy(Configurable):
    """Session-Buddy tracking of this IPython session (``c.SessionBuddy.…``)."""

    component = Unicode(
        None,
        allow_none=True,
        help="The component the session belongs to; default $SESSION_BUDDY_COMPONENT, "
        "else the profile's name (unless 'default'), else 'ipython'.",
    ).tag(config=True)
    shell_type = Unicode(None, allow_none=True, help="The shell's kind; default the shell's class name.").tag(
        config=True
    )
    record_cell = Bool(False, help="Record the whole cell as the command's arguments, not its first line.").tag(
        config=True
    )
    banner = Bool(True, help="Print the 'Session Tracking: …' line when the extension loads.").tag(config=True)


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a name or attribute chain; the called thing's name for ``f()()``/``x[0]()``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    if isinstance(node, ast.Subscript):
        return _dotted(node.value)
    return None


def _ipython_call(call: ast.Call) -> str | None:
    """``%name`` / ``%%name`` / ``!cmd`` for what IPython made of its own syntax."""
    func = call.func
    if not (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Call)
        and isinstance(func.value.func, ast.Name)
        and func.value.func.id == "get_ipython"
    ):
        return None
    first = call.args[0] if call.args else None
    text = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""
    if func.attr == "run_line_magic":
        return f"%{text}"
    if func.attr == "run_cell_magic":
        return f"%%{text}"
    if func.attr in ("system", "getoutput"):
        words = text.split()
        return f"!{words[0]}" if words else "!"
    return None


# Statements whose bodies a cell defines rather than runs.
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _first_call(node: ast.AST) -> str | None:
    """The first call in source order (outermost first), by its name; not inside a body
    that is only defined."""
    if isinstance(node, ast.Call):
        return _ipython_call(node) or _dotted(node.func)
    for child in ast.iter_child_nodes(node):
        if isinstance(child, _DEFINITIONS):
            continue
        found = _first_call(child)
        if found:
            return found
    return None


def _first_assigned(stmt: ast.stmt) -> str | None:
    targets: list[ast.AST] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        targets = [stmt.target]
    for target in targets:
        if isinstance(target, (ast.Tuple, ast.List)) and target.elts:
            target = target.elts[0]
        name = _dotted(target)
        if name:
            return name
    return None


def command_name(source: str, transform: Callable[[str], str] | None = None) -> str:
    """The command a cell stands for: its first called name, else its first assigned name
    (imports and definitions aside), else the first name it defines (``def``/``class``),
    ``import``, its first name, or the kind of its first statement. ``transform`` turns
    IPython's own syntax (``%magic``, ``!cmd``) into Python; it is called only for a cell
    that is not Python already."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = None
    if tree is None and transform is not None:
        try:
            tree = ast.parse(transform(source))
        except SyntaxError:
            tree = None
    if tree is None:
        words = source.split()
        return words[0][:64] if words else "cell"
    setup = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for stmt in tree.body:
        if isinstance(stmt, setup):
            continue
        name = _first_call(stmt) or _first_assigned(stmt)
        if name:
            return name
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return stmt.name
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            return "import"
    for stmt in tree.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name):
                return node.id
    if tree.body:
        return "expression" if isinstance(tree.body[0], ast.Expr) else type(tree.body[0]).__name__.lower()
    return "cell"


def _component(ip: Any, settings: SessionBuddy, explicit: str | None) -> str:
    if explicit:
        return explicit
    env = os.environ.get("SESSION_BUDDY_COMPONENT", "").strip()
    if env:
        return env
    if settings.component:
        return settings.component
    profile = getattr(ip, "profile", None)
    if isinstance(profile, str) and profile and profile != "default":
        return profile
    return "ipython"


class _CellTracker:
    """The hooks on one shell: ``pre_run_cell`` starts the clock, ``post_run_cell`` records."""

    def __init__(self, ip: Any, session: Any, record_cell: bool) -> None:
        self.ip = ip
        self.session = session
        self.record_cell = record_cell
        self.started: float | None = None

    def pre_run_cell(self, info: Any) -> None:
        self.started = time.perf_counter()

    def post_run_cell(self, result: Any) -> None:
        started, self.started = self.started, None
        if started is None:  # the cell that loaded us
            return
        try:
            self._record(result, time.perf_counter() - started)
        except Exception as e:
            warn_once("cannot record a cell: %s", e)

    def _record(self, result: Any, duration: float) -> None:
        info = getattr(result, "info", None)
        raw = getattr(info, "raw_cell", None) or ""
        if not raw.strip() or raw.strip() in _BUILTINS:
            return
        name = command_name(raw, self._transformed)
        args = raw.strip() if self.record_cell else raw.strip().splitlines()[0]
        error = result.error_before_exec or result.error_in_exec
        self.session.record(
            name,
            args,
            success=error is None,
            duration=duration,
            error=_process.describe_exception(error) if error is not None else None,
        )

    def _transformed(self, raw: str) -> str:
        try:
            return self.ip.transform_cell(raw)
        except Exception:
            return raw

    def register(self) -> None:
        self.ip.events.register("pre_run_cell", self.pre_run_cell)
        self.ip.events.register("post_run_cell", self.post_run_cell)

    def unregister(self) -> None:
        for name, hook in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                self.ip.events.unregister(name, hook)
            except ValueError:
                pass


def attach(
    ip: Any,
    *,
    component: str | None = None,
    shell_type: str | None = None,
    record_cell: bool | None = None,
    banner: str = "print",
) -> Any:
    """Tracks the shell ``ip``: joins (or starts) the process's session and records each cell.
    ``banner``: ``"print"`` the tracking line now, ``"banner2"`` add it to the shell's banner
    (an embedded shell not yet shown), or ``"none"``."""
    existing = getattr(ip, _ATTR, None)
    if existing is not None:
        return existing.session
    import session_buddy_client

    settings = SessionBuddy(parent=ip)
    name = _component(ip, settings, component)
    session = session_buddy_client.session(name, shell_type or settings.shell_type or type(ip).__name__)
    tracker = _CellTracker(ip, session, settings.record_cell if record_cell is None else record_cell)
    tracker.register()
    setattr(ip, _ATTR, tracker)
    if settings.banner and banner != "none":
        lines = [session.banner_line()]
        if session.session_id:
            lines.append(f"Session ID: {session.session_id}")
        if banner == "banner2":
            ip.banner2 = (ip.banner2 or "") + "\n".join(lines) + "\n"
        else:
            print("\n".join(lines))
    return session


def detach(ip: Any, reason: str = "exit", *, end: bool = False) -> None:
    """Stops tracking the shell's cells and lets go of the session (``end``: ends it, whoever
    else holds it: the shell it belongs to is over)."""
    tracker = getattr(ip, _ATTR, None)
    if tracker is None:
        return
    try:
        delattr(ip, _ATTR)
    except AttributeError:
        pass
    tracker.unregister()
    session = tracker.session
    if end:
        session._released = True
        _process.end(session._handle, reason)
    else:
        session.end(reason)


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext session_buddy_client.ipython``."""
    try:
        attach(ip)
    except Exception as e:
        warn_once("cannot track this IPython session: %s", e)


def unload_ipython_extension(ip: Any) -> None:
    """``%unload_ext session_buddy_client.ipython``: stops recording cells and lets go."""
    try:
        detach(ip)
    except Exception as e:
        warn_once("cannot stop tracking: %s", e)


def track_admin_shell(cls: type | None = None, *, component: str | None = None, record_cell: bool = False) -> Any:
    """Class decorator for an oneiric ``AdminShell`` subclass: its own start/end hooks go
    through this package's emitter, every cell of its IPython shell is a command, and the
    session ends when ``start()`` returns. One session, however the hooks and the extension
    meet."""

    def decorate(shell_cls: type) -> type:
        original_init: Callable[..., None] = shell_cls.__init__  # type: ignore[misc]
        original_register: Callable[..., Any] = shell_cls._register_magics  # type: ignore[attr-defined]
        original_start: Callable[..., Any] = shell_cls.start  # type: ignore[attr-defined]

        def component_of(self: Any) -> str:
            if component:
                return component
            getter = getattr(self, "_get_component_name", None)
            return (getter() if callable(getter) else None) or "unknown"

        @functools.wraps(original_init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original_init(self, *args, **kwargs)
            try:
                self.session_tracker = SessionEventEmitter(component_name=component_of(self))
            except Exception as e:
                warn_once("cannot track this shell: %s", e)

        @functools.wraps(original_register)
        def _register_magics(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original_register(self, *args, **kwargs)
            shell = getattr(self, "shell", None)
            if shell is not None:
                try:
                    attach(
                        shell,
                        component=component_of(self),
                        shell_type=type(self).__name__,
                        record_cell=record_cell,
                        banner="banner2",
                    )
                except Exception as e:
                    warn_once("cannot track this shell's cells: %s", e)
            return result

        @functools.wraps(original_start)
        def start(self: Any, *args: Any, **kwargs: Any) -> Any:
            reason = "error"
            try:
                result = original_start(self, *args, **kwargs)
                reason = "exit"
                return result
            finally:
                try:
                    emitter = getattr(self, "session_tracker", None)
                    if isinstance(emitter, SessionEventEmitter):
                        emitter.close_sync()
                    shell = getattr(self, "shell", None)
                    if shell is not None:
                        detach(shell, reason, end=True)
                except Exception as e:
                    warn_once("cannot end the shell's session: %s", e)

        shell_cls.__init__ = __init__  # type: ignore[misc]
        shell_cls._register_magics = _register_magics  # type: ignore[attr-defined]
        shell_cls.start = start  # type: ignore[attr-defined]
        return shell_cls

    return decorate(cls) if cls is not None else decorate
