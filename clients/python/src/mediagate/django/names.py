"""The names the storage keeps in FileFields, and the name that carries an upload's owner.

A stored name is ``"{file_id}/{filename}"``: the file id (32 lowercase hex digits) is what
every lookup uses, and it never changes, so rotating a token or renaming nothing ever needs a
row rewritten; the filename after it is only there for people reading the database. It is
shortened to fit the field's ``max_length`` (the id is never cut).

Between ``upload_to`` and the storage's ``_save`` the name is a *pending* name,
``"mediagate-owner={user_id}/{filename}"``: Django hands the storage nothing but a name and the
bytes, so the owner travels in the name (``owned_by`` writes it; ``upload_name`` builds one for
code that calls ``storage.save`` itself).
"""

from __future__ import annotations

import posixpath
import re
from typing import Optional, Tuple

__all__ = [
    "ID_RE",
    "MIN_MAX_LENGTH",
    "OWNER_PREFIX",
    "file_id_of",
    "is_valid_id",
    "parse_upload_name",
    "stable_name",
    "upload_name",
]

#: The API's id alphabet (users; file ids are a subset).
ID_RE = re.compile(r"[A-Za-z0-9._@-]{1,128}")

#: Marks a pending name; no stored name can start with it (those start with 32 hex digits).
OWNER_PREFIX = "mediagate-owner="

_STABLE_RE = re.compile(r"([0-9a-f]{32})(?:/.*)?", re.DOTALL)

#: The shortest ``max_length`` a FileField on this storage can have: the id alone.
MIN_MAX_LENGTH = 32

#: Extensions up to this long are kept when a filename is shortened.
_MAX_KEPT_EXTENSION = 16


def is_valid_id(value: str) -> bool:
    return ID_RE.fullmatch(value) is not None


def file_id_of(name: Optional[str]) -> Optional[str]:
    """The file id a stored name holds, or None if ``name`` is not one of this storage's."""
    if not name:
        return None
    match = _STABLE_RE.fullmatch(name)
    return match.group(1) if match else None


def basename(filename: str) -> str:
    """The last path part of a name given by a browser or a caller ("a\\b/c.pdf" → "c.pdf")."""
    return posixpath.basename(filename.replace("\\", "/"))


def upload_name(user_id: str, filename: str) -> str:
    """The pending name that makes ``MediagateStorage.save`` file ``filename`` under
    ``user_id``."""
    if not is_valid_id(user_id):
        raise ValueError(
            f"{user_id!r} is not a valid mediagate user id (1-128 characters of A-Z a-z 0-9 . _ @ -)"
        )
    return f"{OWNER_PREFIX}{user_id}/{basename(filename)}"


def parse_upload_name(name: str) -> Optional[Tuple[str, str]]:
    """``(user_id, filename)`` from a pending name, or None if ``name`` carries no owner."""
    if not name.startswith(OWNER_PREFIX):
        return None
    owner, slash, rest = name[len(OWNER_PREFIX) :].partition("/")
    filename = basename(rest)
    if not slash or not is_valid_id(owner) or filename in ("", ".", ".."):
        return None
    return owner, filename


def stable_name(file_id: str, filename: str, max_length: Optional[int] = None) -> str:
    """``"{file_id}/{filename}"``, the filename shortened (keeping a short extension) so the
    whole fits ``max_length``; the id alone if nothing of the name fits."""
    if file_id_of(file_id) != file_id:
        raise ValueError(f"{file_id!r} is not a mediagate file id")
    filename = basename(filename)
    if max_length is not None and max_length < MIN_MAX_LENGTH:
        raise ValueError(
            f"max_length {max_length} cannot hold a mediagate file id ({MIN_MAX_LENGTH} characters)"
        )
    room = None if max_length is None else max_length - len(file_id) - 1
    if room is not None and len(filename) > room:
        root, ext = posixpath.splitext(filename)
        if 0 < len(ext) <= _MAX_KEPT_EXTENSION and len(ext) < room:
            filename = root[: room - len(ext)] + ext
        else:
            filename = filename[: max(room, 0)]
    if filename in ("", ".", ".."):
        return file_id
    return f"{file_id}/{filename}"
