"""``MediagateStorage``: a Django storage whose files live in mediagate.

Saving uploads the bytes through the admin API (streamed) under the owner that ``owned_by``
put in the name, and returns the stable name ``"{file_id}/{filename}"`` (see ``names``) for
the FieldFile to keep. ``url`` is the file's *current* public path, so a token rotation never
needs the rows rewritten; URLs are cached briefly (``urlcache``) and ``prefetch_urls`` fills
the cache for a whole page in one call per hundred files.

The files are not on this machine: ``path()`` and ``listdir()`` are not supported, and
``open()`` streams the bytes from mediagate.
"""

from __future__ import annotations

import contextvars
import io
import re
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any, Optional
from urllib.parse import unquote

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage
from django.utils import timezone
from django.utils.deconstruct import deconstructible

from ..errors import Error
from ..types import FileInfo
from . import names
from .conf import config, get_client
from .owners import OwnerMissing
from .urlcache import url_cache

__all__ = ["MediagateStorage"]

# Storage.save knows the field's max_length, _save does not: save() parks it here for _save.
_max_length: "contextvars.ContextVar[Optional[int]]" = contextvars.ContextVar(
    "mediagate_max_length", default=None
)

_DEFAULT_MAX_LENGTH = 100  # FileField's


@deconstructible(path="mediagate.django.MediagateStorage")
class MediagateStorage(Storage):
    """Files in mediagate. ``base_url`` (default ``MEDIAGATE["BASE_URL"]``) is put before the
    ``/media/...`` paths that ``url`` returns."""

    def __init__(self, base_url: Optional[str] = None) -> None:
        self._base_url = base_url

    @property
    def base_url(self) -> str:
        return (config().base_url if self._base_url is None else self._base_url).rstrip("/")

    # Names

    def get_valid_name(self, name: str) -> str:
        """Keeps the name as given: mediagate cleans names itself (Django's default would
        turn "Q1 report.pdf" into "Q1_report.pdf")."""
        name = names.basename(name)
        return name if name not in ("", ".", "..") else "file"

    def get_available_name(self, name: str, max_length: Optional[int] = None) -> str:
        """Every save makes a new file with its own id, so no name is ever taken."""
        return name

    def save(self, name: Optional[str], content: Any, max_length: Optional[int] = None) -> str:
        token = _max_length.set(max_length)
        try:
            return str(super().save(name, content, max_length=max_length))
        finally:
            _max_length.reset(token)

    def _save(self, name: str, content: Any) -> str:
        pending = names.parse_upload_name(name)
        if pending is None:
            raise OwnerMissing(
                f"MediagateStorage cannot tell whose file {name!r} is: give the FileField "
                'upload_to=mediagate.django.owned_by("FIELD"), or save under '
                "mediagate.django.upload_name(user_id, filename)"
            )
        owner, filename = pending
        max_length = _max_length.get()
        if max_length is None:
            max_length = _DEFAULT_MAX_LENGTH
        if max_length < names.MIN_MAX_LENGTH:
            raise ValueError(
                f"a FileField on MediagateStorage needs max_length >= {names.MIN_MAX_LENGTH}"
            )
        client = get_client()
        client.ensure_user(owner)
        cache = url_cache()
        since = cache.epoch()
        chunks = content.chunks() if hasattr(content, "chunks") else content
        upload = client.upload(
            owner, filename, chunks, _content_type_of(content), size=_size_of(content)
        )
        cache.put(upload["file_id"], upload["url"], owner, since)
        # The name mediagate registered (cleaned), as the URL's last segment carries it.
        registered = unquote(upload["url"].rsplit("/", 1)[-1]) or filename
        return names.stable_name(upload["file_id"], registered, max_length)

    # Reading

    def _open(self, name: str, mode: str = "rb") -> File:  # type: ignore[type-arg]
        if mode not in ("rb", "r"):
            raise ValueError(f"MediagateStorage opens files for reading only, not {mode!r}")
        file_id = self._file_id(name)
        try:
            stream = get_client().open(file_id)
        except Error as e:
            raise _missing(name, e) from e
        readable: Any = stream if mode == "rb" else io.TextIOWrapper(io.BufferedReader(stream))
        return File(readable, name=name)

    def exists(self, name: str) -> bool:
        if names.file_id_of(name) is None:
            return False
        try:
            self._info(name)
        except FileNotFoundError:
            return False
        return True

    def size(self, name: str) -> int:
        return int(self._info(name)["size"])

    def url(self, name: Optional[str]) -> str:
        file_id = names.file_id_of(name)
        if file_id is None:
            raise ValueError(
                f"{name!r} is not a MediagateStorage name (\"<file id>/<filename>\"); files "
                "from an older storage need `manage.py mediagate_import` first"
            )
        path = url_cache().get(file_id)
        if path is None:
            path = self._info(name or "")["url"]
        return self.base_url + path

    def get_created_time(self, name: str) -> datetime:
        return _as_django_time(self._info(name)["created_at"])

    def get_modified_time(self, name: str) -> datetime:
        """A mediagate file never changes after upload: its creation time."""
        return self.get_created_time(name)

    # Removing

    def delete(self, name: Optional[str]) -> None:
        """Removes the file; a name that is gone already (or was never one of ours) is fine."""
        file_id = names.file_id_of(name)
        if file_id is None:
            return
        try:
            get_client().delete_file(file_id)
        except Error as e:
            if e.code != "file_not_found":
                raise

    # Plumbing

    @staticmethod
    def _file_id(name: str) -> str:
        file_id = names.file_id_of(name)
        if file_id is None:
            raise FileNotFoundError(f"{name!r} is not a MediagateStorage name")
        return file_id

    def _info(self, name: str) -> FileInfo:
        """The file's metadata (and its URL into the cache); FileNotFoundError if gone."""
        file_id = self._file_id(name)
        cache = url_cache()
        since = cache.epoch()
        try:
            info = get_client().file(file_id)
        except Error as e:
            raise _missing(name, e) from e
        cache.put(file_id, info["url"], info["user_id"], since)
        return info


def _missing(name: str, error: Error) -> Exception:
    """FileNotFoundError for a file mediagate does not have (as Django's storages raise),
    the error itself otherwise."""
    if error.code == "file_not_found":
        return FileNotFoundError(f"{name!r}: no such file in mediagate")
    return error


_MEDIA_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


def _content_type_of(content: Any) -> Optional[str]:
    """The type the browser sent with an upload, without parameters, when it is well formed;
    otherwise None, and mediagate guesses from the name (a malformed type would make it refuse
    the whole upload)."""
    given = getattr(content, "content_type", None)
    if not isinstance(given, str):
        return None
    essence = given.split(";", 1)[0].strip().lower()
    return essence if _MEDIA_TYPE_RE.fullmatch(essence) else None


def _size_of(content: Any) -> Optional[int]:
    """The upload's length, if Django knows it (sent as Content-Length)."""
    try:
        size = content.size
    except (AttributeError, OSError, ValueError):
        return None
    return size if isinstance(size, int) and size >= 0 else None


_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)"
)


def _parse_rfc3339(value: str) -> datetime:
    """RFC 3339 with any number of fractional digits (``fromisoformat`` takes only some
    before Python 3.11)."""
    m = _RFC3339.fullmatch(value)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    zone = m.group(8)
    offset = timedelta(0)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    tz = dt_timezone(offset)
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)


def _as_django_time(value: str) -> datetime:
    """Aware in UTC with USE_TZ, naive local time without it (as FileSystemStorage does)."""
    aware = _parse_rfc3339(value).astimezone(dt_timezone.utc)
    return aware if settings.USE_TZ else timezone.make_naive(aware)

