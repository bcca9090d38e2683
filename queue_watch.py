"""The one place the app reads gradio internals: whether gradio's queue still counts the running event as active.

A client's cancel (gradio_client `job.cancel()`, POST /cancel) or a closed page makes gradio 6 cancel the event's
task and hand its slot to the next queued job at once, but it can only close a generator between two yields:
without this check the cancelled run would go on computing until its next frame, beside the next job. Gradio keeps
the running events in `Blocks._queue.active_jobs` (lists of events with `_id` and `alive`) and finds the current
one by `LocalContext.event_id` (that is how gr.Warning reaches the right page). None of that is public: when a
gradio release moves it, the check says so once in the log and cancel-on-disconnect is off (runs still end, at
their next frame), instead of failing silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("style_studio")
_warned: set[str] = set()


def _never() -> bool:
    return False


def _unavailable(what: str) -> Callable[[], bool]:
    if what not in _warned:
        _warned.add(what)
        log.warning("gradio internals not found (%s): a cancelled or abandoned run ends at its next frame, "
                    "not at its next step", what)
    return _never


def released_check(blocks: object, event_id: str | None) -> Callable[[], bool]:
    """A check that turns True once `blocks`' queue no longer holds the event `event_id` as alive.

    Outside a queued gradio event (event_id None: a test or a direct call) the check is always False."""
    if event_id is None:
        return _never
    queue = getattr(blocks, "_queue", None)
    if queue is None or not isinstance(getattr(queue, "active_jobs", None), list):
        return _unavailable("Blocks._queue.active_jobs")

    def find() -> object | None:
        for job in list(queue.active_jobs):
            for event in job or ():
                if getattr(event, "_id", None) == event_id:
                    return event
        return None

    event = find()
    if event is None or not hasattr(event, "alive"):
        return _unavailable("the running event in the queue's active_jobs, by _id, with alive")
    return lambda: (e := find()) is None or not e.alive


def queue_released() -> Callable[[], bool]:
    """`released_check` for the gradio event this thread is running."""
    try:
        from gradio.context import LocalContext

        blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    except (ImportError, AttributeError) as exc:
        return _unavailable(f"gradio.context.LocalContext.blocks / event_id: {exc}")
    return released_check(blocks, event_id)
