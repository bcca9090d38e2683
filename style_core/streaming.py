"""A run's frames handed over from a painting thread, so that showing a frame never holds the painting up.

Pulled directly, a run's generator stands still while its caller handles a frame (the app draws the loss plot and
gradio encodes the preview): on a GPU, whose step takes a few milliseconds, that is time the device sits idle.
`FramesAhead` runs the generator in its own thread instead. The caller gets every frame that ends a scale or the run,
and of the progress frames the newest one: a progress frame that a newer one overtook before the caller asked is
skipped (the picture it showed is already out of date).

Not yet used by the app: on a CPU the painting is the host's own work, and the same run in a thread took longer
(2 cores, 96 px, nothing done with the frames: 13.4-14.7 s against 10.2-10.7 s pulled directly; with one torch
thread the two were the same), and on a GPU it has not been timed yet. `benchmarks/gpu_bench.py` times a run whose
every frame is encoded as a PNG, pulled directly and through this class: the app takes it up on a GPU if that pays.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator

from .frames import Frame


class FramesAhead:
    """Iterate `frames` in a worker thread, started at once; `close()` ends the run and waits for its cleanup."""

    def __init__(self, frames: Iterator[Frame]) -> None:
        self._frames = frames
        self._ready: deque[Frame] = deque()
        self._changed = threading.Condition()
        self._error: BaseException | None = None
        self._done = self._closing = False
        self._thread = threading.Thread(target=self._paint, name="style-core-run", daemon=True)
        self._thread.start()

    def _paint(self) -> None:
        try:
            for frame in self._frames:
                with self._changed:
                    if self._closing:
                        break
                    if self._ready and self._ready[-1].event == "progress":
                        self._ready.pop()  # not taken yet, and now out of date
                    self._ready.append(frame)
                    self._changed.notify()
        except BaseException as exc:  # the caller's to handle: raised there once the frames before it are taken
            self._error = exc
        finally:
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()  # the run's own cleanup, in the thread that ran it
            with self._changed:
                self._done = True
                self._changed.notify()

    def __iter__(self) -> FramesAhead:
        return self

    def __next__(self) -> Frame:
        with self._changed:
            while not self._ready and not self._done:
                self._changed.wait()
            if self._ready:
                return self._ready.popleft()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        raise StopIteration

    def close(self) -> None:
        """Stop at the run's next frame (its `should_stop` stops it sooner) and wait until it has cleaned up."""
        with self._changed:
            self._closing = True
        self._thread.join()
