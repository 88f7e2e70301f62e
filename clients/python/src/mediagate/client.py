"""``mediagate.Client``: the admin API (api.md, "The admin API") as methods.

Each method returns the API's JSON answer as a ``dict`` (``{}`` for the calls that answer
204 No Content) and raises ``mediagate.Error`` for a refusal. One ``httpx.Client`` is kept for
the client's life, so calls reuse keep-alive connections; close it, or use ``with``.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence, Union, cast
from urllib.parse import quote

import httpx

from . import _body, changes, types
from ._version import __version__
from .content import FileContent
from .errors import Error, UnavailableError

__all__ = ["Client", "MAX_IDS_PER_CALL"]

#: Most ids ``GET /v1/files?ids=`` takes at once; ``Client.files`` splits longer lists.
MAX_IDS_PER_CALL = 100

JSON = Dict[str, Any]


def _segment(value: str, what: str) -> str:
    """One path segment, percent-encoded.

    The API's ids never need encoding, but encoding anyway means a bad id reaches the server
    as itself (and is refused there as ``invalid_input``) instead of changing which route is
    called. Dots are encoded when they make up the whole segment, since ``.`` and ``..`` are
    valid ids that an HTTP stack would otherwise read as "this" and "parent" directory.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if value == "":
        raise ValueError(f"{what} must not be empty")
    encoded = quote(value, safe="")
    if set(encoded) == {"."}:
        encoded = encoded.replace(".", "%2E")
    return encoded


class Client:
    """A client of one mediagate admin listener.

    ``admin_url`` is the listener's base URL (``http://127.0.0.1:9091``; a path prefix is
    kept), ``token`` one of its ``admin.token`` values. ``timeout`` bounds each connect, read
    and write (seconds, or an ``httpx.Timeout``); an upload's total time is not bounded.
    ``transport`` replaces httpx's (a unix socket: ``httpx.HTTPTransport(uds=...)``).
    """

    def __init__(
        self,
        admin_url: str,
        token: str,
        *,
        timeout: Union[float, httpx.Timeout] = 10.0,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        if not token:
            raise ValueError("token must not be empty")
        self.admin_url = admin_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.admin_url,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": f"mediagate-python/{__version__}",
            },
            timeout=timeout,
            transport=transport,
        )

    @property
    def http(self) -> httpx.Client:
        """The underlying ``httpx.Client`` (for event hooks, say). Its base URL and
        Authorization header belong to this client; don't change them."""
        return self._http

    def close(self) -> None:
        """Closes the pooled connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Users

    def ensure_user(self, user_id: str) -> types.User:
        """Creates the user if needed (idempotent): ``{user_id, user_token}``."""
        return cast(types.User, self._call("PUT", f"/v1/users/{_segment(user_id, 'user_id')}"))

    def rotate_user_token(self, user_id: str) -> types.User:
        """A new user token: every URL of the user's files changes (the old ones die now)."""
        result = self._call("POST", f"/v1/users/{_segment(user_id, 'user_id')}/rotate-token")
        changes.publish(changes.Change("user_urls", user_id=user_id))
        return cast(types.User, result)

    def delete_user(self, user_id: str) -> JSON:
        """Deletes the user, its files (and their bytes), its grants and sessions: ``{}``."""
        result = self._call("DELETE", f"/v1/users/{_segment(user_id, 'user_id')}")
        changes.publish(changes.Change("user_urls", user_id=user_id))
        return result

    # Files

    def upload(
        self,
        user_id: str,
        filename: str,
        data: _body.UploadData,
        content_type: Optional[str] = None,
        *,
        size: Optional[int] = None,
    ) -> types.Upload:
        """Uploads a new file of ``user_id`` (who must exist: see ``ensure_user``).

        ``data`` is bytes, a binary file object (read in chunks from its current position,
        never whole) or an iterable of byte chunks. ``size``, when given, is sent as
        ``Content-Length`` and must be exact; for bytes and regular files it is found
        without asking. ``content_type`` ``None`` lets mediagate guess from the name.
        """
        body, length = _body.prepare(data, size)
        headers: Dict[str, str] = {}
        if content_type:
            headers["Content-Type"] = content_type
        if length is not None and not isinstance(body, bytes):
            headers["Content-Length"] = str(length)
        elif length is None:
            # A chunked body that mediagate refuses part-way (413 past upload.max_bytes)
            # leaves the connection unusable although the answer does not say so: the next
            # call on it would hang. So a body of unknown length gets a connection of its own.
            headers["Connection"] = "close"
        path = f"/v1/users/{_segment(user_id, 'user_id')}/files"
        result = self._call(
            "POST", path, params={"filename": filename}, content=body, headers=headers
        )
        return cast(types.Upload, result)

    def file(self, file_id: str) -> types.FileInfo:
        """The file's metadata, current URL and download count."""
        return cast(types.FileInfo, self._call("GET", self._file_path(file_id)))

    def files(self, file_ids: Iterable[str]) -> types.FileList:
        """Several files' metadata in as few calls as possible (one per 100 ids):
        ``{"files": [...]}``, in no promised order, without the ids that name no file."""
        if isinstance(file_ids, str):
            raise TypeError("files() takes a list of file ids, not one str")
        unique: List[str] = []
        seen = set()
        for file_id in file_ids:
            _segment(file_id, "file_id")
            if "," in file_id:
                raise ValueError(f"file_id {file_id!r} contains a comma")
            if file_id not in seen:
                seen.add(file_id)
                unique.append(file_id)
        found: List[types.FileInfo] = []
        for start in range(0, len(unique), MAX_IDS_PER_CALL):
            batch = unique[start : start + MAX_IDS_PER_CALL]
            # Commas are sent as they are: they separate the ids, and ids never contain one.
            ids = ",".join(quote(i, safe="") for i in batch)
            answer = self._call("GET", f"/v1/files?ids={ids}")
            found.extend(cast(types.FileList, answer)["files"])
        return {"files": found}

    def open(self, file_id: str) -> FileContent:
        """The file's bytes as a stream (read, iterate, or hand to ``shutil.copyfileobj``);
        close it, or use ``with``. Nothing is read before it is asked for."""
        request = self._http.build_request("GET", self._file_path(file_id) + "/content")
        try:
            response = self._http.send(request, stream=True)
        except httpx.HTTPError as e:
            raise UnavailableError(f"GET content of {file_id}: {e}") from e
        if response.is_error:
            try:
                response.read()
            except httpx.HTTPError as e:
                raise UnavailableError(f"GET content of {file_id}: {e}") from e
            finally:
                response.close()
            raise Error.from_response(response)
        return FileContent(response)

    def content(self, file_id: str) -> bytes:
        """The file's bytes, read whole: for small files (use ``open`` for large ones)."""
        with self.open(file_id) as stream:
            return stream.read()

    def delete_file(self, file_id: str) -> JSON:
        """Removes the file and its bytes: ``{}``."""
        try:
            result = self._call("DELETE", self._file_path(file_id))
        except Error as e:
            if e.code == "file_not_found":
                changes.publish(changes.Change("file_deleted", file_id=file_id))
            raise
        changes.publish(changes.Change("file_deleted", file_id=file_id))
        return result

    def rotate_file_token(self, file_id: str) -> types.RotatedFile:
        """A new file token: ``{file_id, file_token, url}``; the old URL and every share link
        stop working now."""
        result = cast(
            types.RotatedFile, self._call("POST", self._file_path(file_id) + "/rotate-token")
        )
        changes.publish(changes.Change("file_url", file_id=file_id, url=result.get("url")))
        return result

    def set_visibility(self, file_id: str, visibility: str) -> types.FileInfo:
        """``private``, ``authenticated`` or ``public``; returns the file's new metadata."""
        answer = self._call("PATCH", self._file_path(file_id), json={"visibility": visibility})
        return cast(types.FileInfo, answer)

    def set_disposition(self, file_id: str, disposition: str) -> types.FileInfo:
        """``inline`` or ``attachment``; returns the file's new metadata."""
        answer = self._call("PATCH", self._file_path(file_id), json={"disposition": disposition})
        return cast(types.FileInfo, answer)

    # Sharing

    def grant(self, file_id: str, user_id: str) -> types.Grant:
        """Shares the file with ``user_id`` (an existing user)."""
        path = f"{self._file_path(file_id)}/grants/{_segment(user_id, 'user_id')}"
        return cast(types.Grant, self._call("PUT", path))

    def revoke_grant(self, file_id: str, user_id: str) -> JSON:
        """Stops sharing (also when it was not shared): ``{}``."""
        path = f"{self._file_path(file_id)}/grants/{_segment(user_id, 'user_id')}"
        return self._call("DELETE", path)

    def share_link(self, file_id: str, ttl_seconds: int) -> types.ShareLink:
        """A signed link readable without a session: ``{url, expires_at}``."""
        answer = self._call(
            "POST", self._file_path(file_id) + "/links", json={"ttl_seconds": ttl_seconds}
        )
        return cast(types.ShareLink, answer)

    # Sessions

    def create_session(
        self, user_id: str, ttl_seconds: Optional[int] = None, roles: Sequence[str] = ()
    ) -> types.Session:
        """A native session (``{session_id, expires_at}``); the server's default lifetime
        when ``ttl_seconds`` is ``None``."""
        if isinstance(roles, str):
            raise TypeError("roles must be a sequence of role names, not a str")
        body: JSON = {"user_id": user_id, "roles": list(roles)}
        if ttl_seconds is not None:
            body["ttl_seconds"] = ttl_seconds
        return cast(types.Session, self._call("POST", "/v1/sessions", json=body))

    def logout(self, session_id: str) -> JSON:
        """Ends one session: ``{}``."""
        return self._call("DELETE", f"/v1/sessions/{_segment(session_id, 'session_id')}")

    def logout_everywhere(self, user_id: str) -> types.LoggedOut:
        """Ends every session of the user: ``{"sessions": N}``."""
        path = f"/v1/users/{_segment(user_id, 'user_id')}/sessions"
        return cast(types.LoggedOut, self._call("DELETE", path))

    # Audit

    def events(self, after: Optional[str] = None, limit: Optional[int] = None) -> types.Events:
        """A page of audit events, oldest first; pass its ``next`` as ``after``."""
        params: Dict[str, Union[str, int]] = {}
        if after is not None:
            params["after"] = after
        if limit is not None:
            params["limit"] = limit
        return cast(types.Events, self._call("GET", "/v1/events", params=params))

    # Plumbing

    @staticmethod
    def _file_path(file_id: str) -> str:
        return f"/v1/files/{_segment(file_id, 'file_id')}"

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Dict[str, Any]] = None,
        json: Optional[JSON] = None,
        content: Optional[_body.Body] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> JSON:
        """One call: the decoded JSON of a 2xx answer, ``{}`` for an empty one, else
        ``Error``."""
        try:
            response = self._http.request(
                method, path, params=params, json=json, content=content, headers=headers
            )
        except httpx.HTTPError as e:
            raise UnavailableError(f"{method} {path}: {e}") from e
        if response.is_error:
            raise Error.from_response(response)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise Error(
                response.status_code,
                "unexpected_response",
                f"{method} {path}: the answer is not a JSON object",
            )
        return answer
