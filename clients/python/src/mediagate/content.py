"""A file's bytes as they arrive from ``GET /v1/files/{id}/content``: a read-only binary stream.

It is an ``io.RawIOBase``, so it works wherever a binary file works (``shutil.copyfileobj``,
Django's ``File``, ``io.BufferedReader``), and nothing is held in memory beyond the chunk being
read. Close it (or use ``with``) to give the connection back to the client's pool.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Iterator, Optional

import httpx

from .errors import UnavailableError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["FileContent"]


class FileContent(io.RawIOBase):
    """The open body of a content answer.

    ``content_type`` and ``size`` come from the answer's ``Content-Type`` and
    ``Content-Length`` (``size`` is ``None`` if the server sent no length).
    """

    def __init__(self, response: httpx.Response, chunk_size: int = 64 * 1024) -> None:
        super().__init__()
        self._response = response
        self._chunks: Iterator[bytes] = response.iter_bytes(chunk_size)
        self._pending = b""
        self.content_type: str = response.headers.get("content-type", "application/octet-stream")
        length = response.headers.get("content-length")
        self.size: Optional[int] = int(length) if length and length.isdigit() else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if self.closed:
            raise ValueError("read from a closed FileContent")
        if not self._pending:
            self._pending = self._next_chunk()
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def iter_chunks(self) -> Iterator[bytes]:
        """The remaining bytes, chunk by chunk as they arrive; closes the stream at the end."""
        try:
            if self._pending:
                pending, self._pending = self._pending, b""
                yield pending
            while True:
                chunk = self._next_chunk()
                if not chunk:
                    return
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()

    def _next_chunk(self) -> bytes:
        try:
            return next(self._chunks, b"")
        except httpx.HTTPError as e:
            raise UnavailableError(f"reading a file's content failed: {e}") from e
