"""Changes made through any ``Client`` in this process, for whoever keeps copies.

The Django integration caches public URLs for a few seconds. A rotation or deletion made in the
same process must reach that cache at once, whichever ``Client`` instance made it (the
storage's own, or one the application built itself), so clients announce the changes here and
caches subscribe. Nothing is sent anywhere; a listener that raises is ignored, so that a cache
bug can never turn a successful admin call into an exception.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, List, Optional

__all__ = ["Change", "subscribe", "publish"]


@dataclass(frozen=True)
class Change:
    """What changed. ``kind`` is one of:

    - ``"file_url"``: the file's URL changed (``url`` is the new one, when known);
    - ``"file_deleted"``: the file is gone;
    - ``"user_urls"``: every URL of the user's files changed (user token rotated, or the user
      deleted).
    """

    kind: str
    file_id: Optional[str] = None
    user_id: Optional[str] = None
    url: Optional[str] = None


Listener = Callable[[Change], None]

_lock = threading.Lock()
_listeners: List[Listener] = []


def subscribe(listener: Listener) -> Callable[[], None]:
    """Calls ``listener`` for every change made through a ``Client`` in this process; returns a
    function that unsubscribes it."""
    with _lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def publish(change: Change) -> None:
    """Tells every listener (called by ``Client`` after the server confirmed the change)."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(change)
        except Exception:  # noqa: BLE001 - see the module docstring
            pass
