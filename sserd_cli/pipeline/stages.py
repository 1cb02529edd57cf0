"""Threads joined by bounded queues: the plumbing of the streaming edit.

Each stage runs in its own thread and hands items on through a :class:`Pipe` of fixed capacity, so
decode, face work, network batches and encode overlap while at most a fixed number of frames is in
flight. The first failure anywhere (an exception, or KeyboardInterrupt raised in a stage) stops every
stage and is re-raised in the thread that drains the last pipe.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

END = object()  # marks the end of a stream


class Stopped(Exception):
    """Raised inside a stage when another stage failed and the run is being torn down."""


class Run:
    """Shared state of one pipeline run: the stop flag and the first error; and, for the speed profile, each
    stage thread's wall time and the time each thread spent waiting on a pipe (a stage's busy time is the
    difference: what it cost, whatever the others did)."""

    def __init__(self):
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.walls: dict[str, float] = {}
        self.waits: defaultdict[str, float] = defaultdict(float)  # thread name -> seconds blocked on pipes

    def waited(self, seconds: float) -> None:
        self.waits[threading.current_thread().name] += seconds  # each thread adds to its own key only

    def busy(self) -> dict[str, float]:
        """Seconds each finished stage thread worked (its wall time less its waits on pipes), by stage name."""
        return {name: max(0.0, wall - self.waits.get(f"sserd-{name}", 0.0)) for name, wall in self.walls.items()}

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc
        self.stop.set()

    def start(self, name: str, target: Callable[[], None]) -> None:
        def body():
            started = time.perf_counter()
            try:
                target()
            except Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the draining thread, re-raised there
                self.fail(exc)
            finally:
                self.walls[name] = time.perf_counter() - started

        thread = threading.Thread(target=body, name=f"sserd-{name}", daemon=True)
        self.threads.append(thread)  # listed first: a Ctrl-C inside start() must still find it in close()
        thread.start()

    def close(self) -> None:
        """Stop every stage and wait for them (they poll the stop flag at least every 0.1 s)."""
        self.stop.set()
        for thread in self.threads:
            if thread.ident is not None:  # a Ctrl-C may land between creating a thread and starting it
                thread.join()

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


class Pipe:
    """A bounded FIFO between two stages that gives up when the run stops."""

    def __init__(self, run: Run, capacity: int):
        self.run = run
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, capacity))

    def put(self, item) -> None:
        started = time.perf_counter()
        try:
            while True:
                if self.run.stop.is_set():
                    raise Stopped()
                try:
                    self.queue.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue
        finally:
            self.run.waited(time.perf_counter() - started)

    def get(self):
        started = time.perf_counter()
        try:
            while True:
                try:
                    return self.queue.get(timeout=0.1)
                except queue.Empty:
                    if self.run.stop.is_set():
                        raise Stopped() from None
        finally:
            self.run.waited(time.perf_counter() - started)

    def __iter__(self) -> Iterator:
        while True:
            item = self.get()
            if item is END:
                return
            yield item


def feed(run: Run, items: Iterable, out: Pipe) -> None:
    """Stage body: push every item of ``items`` (e.g. a decoder) into ``out``, then END."""
    for item in items:
        out.put(item)
        if run.stop.is_set():
            raise Stopped()
    out.put(END)
