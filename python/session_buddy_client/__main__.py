"""``python -m session_buddy_client event-buffer replay --daemon``: the detached sender.

A tracked Python program hands what is still undelivered at its end to this process (the
client's one rule: ``<sender program> <sender args…> event-buffer replay --daemon``, here
``sys.executable -m session_buddy_client``). It runs the Rust sender compiled into the
extension, the same ``run_sender_daemon`` that ``session-buddy event-buffer replay --daemon``
runs, so a wheel needs no ``session-buddy`` binary. Anything else is for the ``session-buddy``
command line.
"""

from __future__ import annotations

import os
import sys

from ._native import run_sender_daemon

USAGE = (
    "usage: python -m session_buddy_client event-buffer replay --daemon\n"
    "(the detached sender a tracked Python program starts; for everything else use the "
    "session-buddy command line)"
)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["event-buffer", "replay", "--daemon"]:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        # A session of its own: the terminal and the program's pipes never wait for it.
        os.setsid()
    except PermissionError:
        # The tracker starts us as the leader of our own process group (out of the
        # terminal's foreground group from the first instant), which cannot start a
        # session; a child of ours can, and does the work.
        if os.fork() != 0:
            os._exit(0)
        os.setsid()
    return run_sender_daemon()


if __name__ == "__main__":
    sys.exit(main())
