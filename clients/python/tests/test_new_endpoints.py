"""``Client.files`` (``GET /v1/files?ids=``) and ``Client.open``/``content``
(``GET /v1/files/{id}/content``): the batch lookup behind a page of URLs, and the bytes behind
``Storage._open``."""

from __future__ import annotations

import hashlib
from typing import List

import httpx
import pytest

import mediagate

from .conftest import unique

pytestmark = pytest.mark.new_endpoints


def test_files_lists_the_ids_that_exist(client: mediagate.Client, user_id: str) -> None:
    client.ensure_user(user_id)
    a = client.upload(user_id, "a.txt", b"a")
    b = client.upload(user_id, "b.txt", b"bb")
    listed = client.files([a["file_id"], "0" * 32, b["file_id"], a["file_id"]])["files"]
    assert sorted(f["file_id"] for f in listed) == sorted([a["file_id"], b["file_id"]])
    for f in listed:
        assert f == client.file(f["file_id"])


def test_files_asks_for_at_most_100_ids_per_call(client: mediagate.Client, user_id: str) -> None:
    client.ensure_user(user_id)
    real = client.upload(user_id, "a.txt", b"a")["file_id"]
    ids = [f"{n:032x}" for n in range(1, 150)] + [real]
    sent: List[httpx.Request] = []
    client.http.event_hooks["request"].append(sent.append)
    listed = client.files(ids)["files"]
    assert [f["file_id"] for f in listed] == [real]
    assert len(sent) == 2
    counts = [len(r.url.params["ids"].split(",")) for r in sent]
    assert counts == [100, 50]


def test_content_and_open(client: mediagate.Client, user_id: str) -> None:
    client.ensure_user(user_id)
    up = client.upload(user_id, "page.html", b"<p>hi</p>")
    assert client.content(up["file_id"]) == b"<p>hi</p>"
    with client.open(up["file_id"]) as stream:
        assert stream.content_type.startswith("text/html")
        assert stream.size == 9
        assert stream.read(3) == b"<p>"
        assert stream.read() == b"hi</p>"


def test_open_streams_a_large_file(client: mediagate.Client, user_id: str) -> None:
    client.ensure_user(user_id)
    block = bytes(range(256)) * 4096  # 1 MiB
    up = client.upload(user_id, "big.bin", iter([block] * 8))
    digest = hashlib.sha256()
    with client.open(up["file_id"]) as stream:
        assert stream.size == 8 * len(block)
        for chunk in stream.iter_chunks():
            assert len(chunk) <= 1024 * 1024
            digest.update(chunk)
    assert digest.digest() == hashlib.sha256(block * 8).digest()


def test_content_of_an_unknown_file(client: mediagate.Client) -> None:
    with pytest.raises(mediagate.Error) as e:
        client.content("0" * 32)
    assert (e.value.status, e.value.code) == (404, "file_not_found")
    with pytest.raises(mediagate.Error) as bad:
        client.open(unique("bad") + "!")
    assert (bad.value.status, bad.value.code) == (400, "invalid_input")
