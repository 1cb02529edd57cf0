"""SIGTERM and SIGHUP end a run the way Ctrl-C does.

A ``timeout``, a ``kill`` or a closed terminal sends SIGTERM or SIGHUP, whose default action kills the
process on the spot: the ``finally`` and ``except BaseException`` blocks that remove temporary outputs
never run. :func:`terminations_as_interrupts` turns those signals into :class:`Terminated`, a
:class:`KeyboardInterrupt`, so every clean-up written for Ctrl-C runs for them too, and the run can exit
with the conventional code 128 + signal number.

Only imports from the standard library: worker processes install the same handlers at start-up.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

_received: list[int] = []  # signal numbers seen by the handler, first first


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM or SIGHUP arrives."""

    def __init__(self, signum: int):
        super().__init__(signal_name(signum))
        self.signum = signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _handler(signum, frame) -> None:
    _received.append(signum)
    # the clean-up that follows must not be cut short by a second signal (kill -9 still ends it)
    for other in SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise Terminated(signum)


def install() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` in this process (a worker process's initializer)."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _handler)


@contextmanager
def terminations_as_interrupts() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise :class:`Terminated`; the previous handlers come back after.

    Outside the main thread (where Python cannot set handlers) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    _received.clear()
    install()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def received() -> int | None:
    """The first SIGTERM/SIGHUP received in the current :func:`terminations_as_interrupts` block, if any."""
    return _received[0] if _received else None


def exit_code(exc: BaseException | None = None) -> int:
    """128 + the signal number that ended the run: SIGINT's 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    signum = exc.signum if isinstance(exc, Terminated) else received()
    return 128 + (signum if signum is not None else signal.SIGINT)
