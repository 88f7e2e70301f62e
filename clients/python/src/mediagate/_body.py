"""Upload bodies: bytes as they are, anything else as a stream of bounded chunks.

httpx would iterate a file object line by line (a binary file's "lines" can be the whole file),
so a file object is read here in fixed-size chunks instead, and the body never sits in memory
whole. When the size is known (bytes, a regular file, or the caller said), it is sent as
``Content-Length``, which lets mediagate refuse an oversized upload before reading it;
otherwise the body goes chunked.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO, Iterable, Iterator, Optional, Tuple, Union

__all__ = ["UploadData", "CHUNK_SIZE", "prepare"]

#: Bytes read from a file object per chunk.
CHUNK_SIZE = 64 * 1024

#: What ``Client.upload`` accepts: bytes, a binary file object (anything with ``read``), or an
#: iterable of byte chunks (a generator, Django's ``File.chunks()``).
UploadData = Union[bytes, bytearray, memoryview, BinaryIO, Iterable[bytes]]

Body = Union[bytes, Iterator[bytes]]


def prepare(data: UploadData, size: Optional[int]) -> Tuple[Body, Optional[int]]:
    """The body to hand to httpx, and its length when known."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        return raw, len(raw)
    if isinstance(data, (str, io.TextIOBase)):
        raise TypeError("upload data must be bytes or a binary file object, not text")
    read = getattr(data, "read", None)
    if callable(read):
        if size is None:
            size = _remaining(data)
        return _chunks_of(data), size
    return iter(data), size  # an iterable of byte chunks


def _chunks_of(f: object) -> Iterator[bytes]:
    """Reads ``f`` in chunks until it is exhausted."""
    read = getattr(f, "read")
    while True:
        chunk = read(CHUNK_SIZE)
        if not chunk:
            return
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise TypeError("upload data must be a binary file object (read() returned text)")
        yield bytes(chunk)


def _remaining(f: object) -> Optional[int]:
    """Bytes left in a regular file from its current position, or None when that can't be
    known for sure (pipes, sockets, custom readers)."""
    try:
        fileno = getattr(f, "fileno")()
        st = os.fstat(fileno)
        tell = getattr(f, "tell")()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    import stat

    if not stat.S_ISREG(st.st_mode):
        return None
    return max(st.st_size - int(tell), 0)
