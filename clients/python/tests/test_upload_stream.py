"""An upload from a file object is streamed: a 32 MiB body that exists only as it is read
goes up without ever being in memory whole."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from typing import TYPE_CHECKING

import mediagate

from ._server import Server
from .conftest import decide

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

SIZE = 32 * 1024 * 1024


# Byte k of a generated file is k % 251: a pattern whose chunks never line up with reads.
_PATTERN = bytes(range(251)) * 1100


class GeneratedFile(io.RawIOBase):
    """A binary file object whose bytes are made as they are read; it records the largest
    read asked of it and the digest of everything it handed out."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.position = 0
        self.largest_read = 0
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        self.largest_read = max(self.largest_read, len(view))
        n = min(len(view), self.remaining, len(_PATTERN) - 251)
        shift = self.position % 251
        chunk = _PATTERN[shift : shift + n]
        view[:n] = chunk
        self.digest.update(chunk)
        self.remaining -= n
        self.position += n
        return n


def test_a_large_file_object_is_streamed(
    server: Server, client: mediagate.Client, user_id: str
) -> None:
    client.ensure_user(user_id)
    source = GeneratedFile(SIZE)
    tracemalloc.start()
    try:
        up = client.upload(user_id, "generated.bin", source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert up["size"] == SIZE
    assert source.largest_read <= 1024 * 1024
    assert peak < 4 * 1024 * 1024, f"peak Python memory {peak} bytes for a {SIZE}-byte upload"
    # The stored bytes, as nginx would serve them.
    session = client.create_session(user_id)["session_id"]
    answer = decide(server, up["url"], session)
    assert answer.status_code == 200
    stored = hashlib.sha256()
    with open(server.storage_root / answer.headers["X-Media-Path"], "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            stored.update(block)
    assert stored.digest() == source.digest.digest()
