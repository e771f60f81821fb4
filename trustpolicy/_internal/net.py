"""A hard deadline for network calls, whatever they are stuck in.

Socket timeouts bound each read, not a whole exchange: a server that sends its headers a byte at a
time, or a host name that takes minutes to resolve (resolution has no socket timeout), would keep
a call alive indefinitely. Every outgoing request (timestamping, revocation, service indexes) runs
through `with_deadline`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def with_deadline(fn: Callable[[], T], timeout: float, *, name: str = "trustpolicy-network") -> T:
    """Run fn in a daemon thread; raise TimeoutError when it has not finished after `timeout` seconds.
    An abandoned thread ends on its own socket timeout and never blocks interpreter exit."""
    result: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def run() -> None:
        try:
            result.put((True, fn()))
        except BaseException as exc:  # handed to the caller, never raised in the thread
            result.put((False, exc))

    threading.Thread(target=run, name=name, daemon=True).start()
    try:
        ok, value = result.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"no answer within {timeout:g} s") from None
    if not ok:
        raise value
    return value
