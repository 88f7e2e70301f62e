"""``prefetch_urls``: the URLs of a page's files in one admin call per hundred.

Call it with the FieldFiles (or names) a page is about to show; the ``.url`` of each is then
served from the URL cache::

    docs = list(Document.objects.filter(owner=request.user))
    prefetch_urls(doc.file for doc in docs)
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Union

from . import names
from .conf import config, get_client
from .urlcache import url_cache

__all__ = ["prefetch_urls"]


def prefetch_urls(
    files: Iterable[Union[str, Any, None]], *, base_url: Optional[str] = None
) -> Dict[str, str]:
    """Fills the URL cache for ``files`` (FieldFiles, or stored names; empty ones and names
    not of this storage are passed over) and returns ``{name: url}`` for those mediagate has
    (``base_url``, default ``MEDIAGATE["BASE_URL"]``, put before each path).

    Files already in the cache cost nothing. With ``URL_CACHE_SECONDS = 0`` nothing is
    cached, and only the returned dict holds the answers.
    """
    wanted: Dict[str, List[str]] = {}
    for item in files:
        name = item if isinstance(item, str) or item is None else getattr(item, "name", None)
        file_id = names.file_id_of(name)
        if file_id is not None and name is not None:
            wanted.setdefault(file_id, []).append(name)
    cache = url_cache()
    paths: Dict[str, str] = {}
    missing: List[str] = []
    for file_id in wanted:
        cached = cache.get(file_id)
        if cached is None:
            missing.append(file_id)
        else:
            paths[file_id] = cached
    if missing:
        since = cache.epoch()
        found = get_client().files(missing)["files"]
        cache.put_many(((f["file_id"], f["url"], f["user_id"]) for f in found), since)
        paths.update((f["file_id"], f["url"]) for f in found)
    prefix = (config().base_url if base_url is None else base_url).rstrip("/")
    return {
        name: prefix + paths[file_id]
        for file_id, file_names in wanted.items()
        if file_id in paths
        for name in file_names
    }
