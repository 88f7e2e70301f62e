"""A short per-process cache of files' public URLs.

A page that lists a hundred files would otherwise make a hundred admin calls for
``FieldFile.url``. The cost is staleness, bounded: a URL is reused for at most
``URL_CACHE_SECONDS`` (default 30). A rotation or deletion made through any ``mediagate.Client``
in this process reaches the cache at once (``mediagate.changes``); one made elsewhere (another
worker process, another host, the admin API by hand) reaches it within that bound. A stale URL
is harmless to access control, since mediagate refuses the old token at once; it is a broken
link until it expires.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Dict, Iterable, Optional, Tuple

from .. import changes

__all__ = ["UrlCache", "url_cache"]


class UrlCache:
    """file id → (API path, owner, deadline), least recently used dropped past ``size``."""

    def __init__(
        self, seconds: float, size: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.size = size
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: "OrderedDict[str, Tuple[str, str, float]]" = OrderedDict()
        # Counts invalidations, so that an answer fetched before one is not stored after it.
        self._epoch = 0

    def epoch(self) -> int:
        """Take this before asking mediagate, and pass it to ``put``/``put_many``."""
        with self._lock:
            return self._epoch

    def get(self, file_id: str) -> Optional[str]:
        with self._lock:
            entry = self._entries.get(file_id)
            if entry is None:
                return None
            url, _owner, deadline = entry
            if self._clock() >= deadline:
                del self._entries[file_id]
                return None
            self._entries.move_to_end(file_id)
            return url

    def put(self, file_id: str, url: str, owner: str, since: int) -> None:
        self.put_many([(file_id, url, owner)], since)

    def put_many(self, entries: Iterable[Tuple[str, str, str]], since: int) -> None:
        """Stores ``(file_id, url, owner)`` answers fetched after ``epoch()`` was ``since``;
        drops them if anything was invalidated meanwhile (they may predate a rotation)."""
        if self.seconds <= 0:
            return
        deadline = self._clock() + self.seconds
        with self._lock:
            if self._epoch != since:
                return
            for file_id, url, owner in entries:
                self._entries[file_id] = (url, owner, deadline)
                self._entries.move_to_end(file_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget_file(self, file_id: str) -> None:
        with self._lock:
            self._epoch += 1
            self._entries.pop(file_id, None)

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            self._epoch += 1
            for file_id in [f for f, (_, owner, _d) in self._entries.items() if owner == user_id]:
                del self._entries[file_id]

    def clear(self) -> None:
        with self._lock:
            self._epoch += 1
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def on_change(self, change: changes.Change) -> None:
        """Applies a change made through a ``Client`` of this process."""
        if change.kind in ("file_url", "file_deleted") and change.file_id:
            self.forget_file(change.file_id)
        elif change.kind == "user_urls" and change.user_id:
            self.forget_user(change.user_id)


_lock = threading.Lock()
_caches: Dict[Tuple[float, int], UrlCache] = {}


def url_cache() -> UrlCache:
    """The process's cache, sized by the current settings."""
    from .conf import config

    cfg = config()
    key = (cfg.url_cache_seconds, cfg.url_cache_size)
    with _lock:
        cache = _caches.get(key)
        if cache is None:
            for old in _caches.values():
                old.clear()
            _caches.clear()
            cache = _caches[key] = UrlCache(cfg.url_cache_seconds, cfg.url_cache_size)
        return cache


def _on_change(change: changes.Change) -> None:
    with _lock:
        caches = list(_caches.values())
    for cache in caches:
        cache.on_change(change)


changes.subscribe(_on_change)
