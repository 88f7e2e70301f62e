"""Pure logic, no server: stored names, pending names, the URL cache, time parsing."""

from __future__ import annotations

from datetime import timedelta
from typing import List

import pytest

from mediagate import changes
from mediagate.django import names
from mediagate.django.storage import _parse_rfc3339
from mediagate.django.urlcache import UrlCache

FILE_ID = "0123456789abcdef0123456789abcdef"


def test_stable_names() -> None:
    assert names.stable_name(FILE_ID, "a b.pdf") == f"{FILE_ID}/a b.pdf"
    assert names.file_id_of(f"{FILE_ID}/a b.pdf") == FILE_ID
    assert names.file_id_of(FILE_ID) == FILE_ID
    for other in (None, "", "uploads/a.pdf", FILE_ID.upper() + "/a", FILE_ID[:-1] + "/a", "x" + FILE_ID):
        assert names.file_id_of(other) is None
    with pytest.raises(ValueError):
        names.stable_name("nothex", "a")


def test_stable_names_fit_max_length_and_never_cut_the_id() -> None:
    long = "quarterly report of the northern region, final version.pdf"
    for max_length in range(32, 120):
        name = names.stable_name(FILE_ID, long, max_length)
        assert len(name) <= max_length and name.startswith(FILE_ID)
        assert names.file_id_of(name) == FILE_ID
    assert names.stable_name(FILE_ID, long, 40) == f"{FILE_ID}/qua.pdf"
    assert names.stable_name(FILE_ID, long, 34) == f"{FILE_ID}/q"
    assert names.stable_name(FILE_ID, long, 32) == FILE_ID
    assert names.stable_name(FILE_ID, "x.averyveryverylongextension", 40) == f"{FILE_ID}/x.avery"
    with pytest.raises(ValueError):
        names.stable_name(FILE_ID, "a", 31)


def test_upload_names_carry_the_owner() -> None:
    name = names.upload_name("alice@example.com", "dir\\sub/Q1 report.pdf")
    assert name == "mediagate-owner=alice@example.com/Q1 report.pdf"
    assert names.parse_upload_name(name) == ("alice@example.com", "Q1 report.pdf")
    assert names.parse_upload_name("..") is None
    assert names.parse_upload_name("uploads/a.pdf") is None
    assert names.parse_upload_name("mediagate-owner=bad id/a.pdf") is None
    assert names.parse_upload_name("mediagate-owner=alice/") is None
    with pytest.raises(ValueError):
        names.upload_name("no spaces", "a")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_url_cache_expires_and_evicts() -> None:
    clock = Clock()
    cache = UrlCache(seconds=30, size=2, clock=clock)
    cache.put("a", "/media/a", "alice", cache.epoch())
    assert cache.get("a") == "/media/a"
    clock.now = 29.9
    assert cache.get("a") == "/media/a"
    clock.now = 30.0
    assert cache.get("a") is None
    since = cache.epoch()
    cache.put_many([("a", "/a", "u"), ("b", "/b", "u"), ("c", "/c", "u")], since)
    assert len(cache) == 2 and cache.get("a") is None  # least recently used went first


def test_url_cache_invalidation() -> None:
    cache = UrlCache(seconds=30, size=100)
    since = cache.epoch()
    cache.put_many([("a", "/a", "alice"), ("b", "/b", "alice"), ("c", "/c", "bob")], since)
    cache.on_change(changes.Change("file_url", file_id="a", url="/new"))
    assert cache.get("a") is None and cache.get("b") == "/b"
    cache.on_change(changes.Change("user_urls", user_id="alice"))
    assert cache.get("b") is None and cache.get("c") == "/c"
    cache.on_change(changes.Change("file_deleted", file_id="c"))
    assert len(cache) == 0


def test_an_answer_older_than_an_invalidation_is_not_stored() -> None:
    cache = UrlCache(seconds=30, size=100)
    since = cache.epoch()  # ... the admin call starts
    cache.forget_file("a")  # ... a rotation lands meanwhile
    cache.put("a", "/old", "alice", since)  # ... the answer, possibly from before it
    assert cache.get("a") is None


def test_a_zero_second_cache_keeps_nothing() -> None:
    cache = UrlCache(seconds=0, size=100)
    cache.put("a", "/a", "alice", cache.epoch())
    assert cache.get("a") is None


def test_changes_reach_subscribers_and_a_failing_one_is_ignored() -> None:
    seen: List[changes.Change] = []

    def broken(change: changes.Change) -> None:
        raise RuntimeError("a listener bug")

    unsubscribe_broken = changes.subscribe(broken)
    unsubscribe = changes.subscribe(seen.append)
    changes.publish(changes.Change("file_deleted", file_id="a"))
    unsubscribe()
    unsubscribe_broken()
    changes.publish(changes.Change("file_deleted", file_id="b"))
    assert seen == [changes.Change("file_deleted", file_id="a")]


def test_rfc3339_times() -> None:
    t = _parse_rfc3339("2026-11-22T09:00:00.123456789Z")
    assert (t.year, t.hour, t.microsecond) == (2026, 9, 123456)
    assert t.utcoffset() == timedelta(0)
    assert _parse_rfc3339("2026-11-22T10:00:00+01:00") == _parse_rfc3339("2026-11-22T09:00:00Z")
    with pytest.raises(ValueError):
        _parse_rfc3339("yesterday")


def test_errors_survive_pickling() -> None:
    import pickle

    import mediagate

    error = pickle.loads(pickle.dumps(mediagate.Error(404, "file_not_found", "file not found")))
    assert (error.status, error.code, error.message) == (404, "file_not_found", "file not found")
    gone = pickle.loads(pickle.dumps(mediagate.UnavailableError("refused")))
    assert isinstance(gone, mediagate.UnavailableError)
    assert (gone.status, gone.code, gone.message) == (None, "unavailable", "refused")


def test_files_wants_a_list_not_a_string() -> None:
    import mediagate

    with mediagate.Client("http://127.0.0.1:9", "t" * 20) as c, pytest.raises(TypeError):
        c.files("0123456789abcdef0123456789abcdef")
