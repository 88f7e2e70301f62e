"""The shapes of the admin API's answers, as ``TypedDict``s.

They are plain ``dict``s at run time (the client returns the decoded JSON as it came), typed so
that an editor and mypy know the keys. Keys the server adds later are still in the dict.
"""

from __future__ import annotations

from typing import List, Optional, TypedDict

__all__ = [
    "User",
    "Upload",
    "FileInfo",
    "FileList",
    "RotatedFile",
    "Grant",
    "ShareLink",
    "Session",
    "LoggedOut",
    "Event",
    "Events",
]


class User(TypedDict):
    user_id: str
    user_token: str


class Upload(TypedDict):
    file_id: str
    file_token: str
    url: str
    size: int
    content_type: str


class _FileInfoExtras(TypedDict, total=False):
    # In the server's answer, not (yet) in api.md: who the file is shared with.
    grants: List[str]


class FileInfo(_FileInfoExtras):
    file_id: str
    user_id: str
    filename: str
    url: str
    size: int
    content_type: str
    visibility: str
    disposition: str
    downloads: int
    created_at: str


class FileList(TypedDict):
    files: List[FileInfo]


class RotatedFile(TypedDict):
    file_id: str
    file_token: str
    url: str


class Grant(TypedDict):
    file_id: str
    user_id: str


class ShareLink(TypedDict):
    url: str
    expires_at: str


class Session(TypedDict):
    session_id: str
    expires_at: str


class LoggedOut(TypedDict):
    sessions: int


class Event(TypedDict):
    id: str
    at: str
    kind: str
    user_id: Optional[str]
    file_id: Optional[str]
    decision: Optional[str]
    client: Optional[str]


class Events(TypedDict):
    events: List[Event]
    next: Optional[str]
