"""``MediagateStorage`` and ``owned_by`` in a real Django project (SQLite) against the real
binary: save, url (also after rotations), exists, size, open, delete, and the URL cache."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, List

import httpx
import pytest

import mediagate

from ._server import Server
from .conftest import served_bytes, unique

pytestmark = pytest.mark.usefixtures("django_project", "fresh_url_cache")

STABLE = re.compile(r"[0-9a-f]{32}/.+")


def make_user(name: str = "user") -> Any:
    from django.contrib.auth.models import User

    return User.objects.create_user(unique(name), password="pw")


def save_document(content: bytes = b"hello", filename: str = "Q1 report.txt") -> Any:
    from django.core.files.base import ContentFile
    from gallery.models import Document  # type: ignore[import-not-found]

    doc = Document(owner=make_user("owner"))
    doc.file.save(filename, ContentFile(content), save=True)
    return doc


def staff_session(client: mediagate.Client) -> str:
    reader = unique("staff")
    client.ensure_user(reader)
    return client.create_session(reader, roles=["staff"])["session_id"]


def test_save_files_the_upload_under_the_owner(server: Server, client: mediagate.Client) -> None:
    doc = save_document(b"quarterly numbers", "Q1 report.txt")
    assert STABLE.fullmatch(doc.file.name)
    file_id = doc.file.name[:32]
    info = client.file(file_id)
    assert info["user_id"] == str(doc.owner.pk)
    assert info["filename"] == "Q1 report.txt"
    assert doc.file.name == f"{file_id}/Q1 report.txt"
    assert served_bytes(server, info["url"], staff_session(client)) == b"quarterly numbers"
    doc.refresh_from_db()
    assert doc.file.url == info["url"]


def test_url_is_the_current_public_path(client: mediagate.Client, admin_calls: List[str]) -> None:
    doc = save_document()
    file_id = doc.file.name[:32]
    first = doc.file.url
    assert first.startswith("/media/") and first.endswith("/Q1%20report.txt")
    assert first == client.file(file_id)["url"]
    calls = len(admin_calls)
    assert doc.file.url == first
    assert len(admin_calls) == calls, "a cached URL costs no admin call"


def test_url_after_a_rotation_through_a_client(client: mediagate.Client) -> None:
    doc = save_document()
    file_id = doc.file.name[:32]
    old = doc.file.url
    rotated = client.rotate_file_token(file_id)  # another Client instance of this process
    assert doc.file.url == rotated["url"] != old
    user = client.rotate_user_token(str(doc.owner.pk))
    assert user["user_token"] in doc.file.url
    assert doc.file.name.startswith(file_id), "the row never changes"


def test_a_rotation_made_elsewhere_reaches_cached_urls_within_the_bound(server: Server) -> None:
    from django.conf import settings
    from django.test import override_settings

    with override_settings(MEDIAGATE={**settings.MEDIAGATE, "URL_CACHE_SECONDS": 0.5}):
        doc = save_document()
        old = doc.file.url
        outside = httpx.post(
            f"{server.admin_url}/v1/files/{doc.file.name[:32]}/rotate-token",
            headers={"Authorization": f"Bearer {server.token}"},
        ).json()["url"]
        assert doc.file.url == old  # cached: the change was not made through a Client here
        time.sleep(0.6)
        assert doc.file.url == outside


def test_base_url(client: mediagate.Client) -> None:
    from django.conf import settings
    from django.test import override_settings

    from mediagate.django import MediagateStorage

    doc = save_document()
    path = client.file(doc.file.name[:32])["url"]
    base = "https://media.example.com/"
    with override_settings(MEDIAGATE={**settings.MEDIAGATE, "BASE_URL": base}):
        assert doc.file.url == "https://media.example.com" + path
    assert MediagateStorage(base_url="https://cdn.example.org").url(doc.file.name) == (
        "https://cdn.example.org" + path
    )


def test_exists_size_times_and_delete(client: mediagate.Client) -> None:
    doc = save_document(b"12345")
    storage, name = doc.file.storage, doc.file.name
    assert storage.exists(name)
    assert storage.size(name) == 5 and doc.file.size == 5
    created = storage.get_created_time(name)
    assert created.tzinfo is not None
    assert abs(datetime.now(timezone.utc) - created) < timedelta(minutes=5)
    assert not storage.exists("uploads/legacy.txt")
    assert not storage.exists("0" * 32 + "/never.txt")
    doc.file.delete(save=False)
    assert not storage.exists(name)
    with pytest.raises(mediagate.Error) as e:
        client.file(name[:32])
    assert e.value.code == "file_not_found"
    storage.delete(name)  # gone already: fine
    storage.delete("uploads/legacy.txt")  # never ours: fine
    with pytest.raises(FileNotFoundError):
        storage.size(name)


@pytest.mark.new_endpoints
def test_open_reads_the_bytes() -> None:
    doc = save_document(b"line one\nline two\n", "notes.txt")
    doc.refresh_from_db()
    with doc.file.open("rb") as f:
        assert f.read() == b"line one\nline two\n"
    assert doc.file.storage.open(doc.file.name, "r").read() == "line one\nline two\n"
    with pytest.raises(FileNotFoundError):
        doc.file.storage.open("0" * 32 + "/gone.txt")


def test_open_refuses_writing() -> None:
    doc = save_document()
    with pytest.raises(ValueError):
        doc.file.storage.open(doc.file.name, "wb")
    with pytest.raises(FileNotFoundError):
        doc.file.storage.open("uploads/legacy.txt")


def test_saving_without_an_owner_fails_clearly() -> None:
    from django.core.files.base import ContentFile
    from gallery.models import Document, Unowned

    from mediagate.django import OwnerMissing

    with pytest.raises(OwnerMissing, match="owned_by"):
        Unowned().file.save("a.txt", ContentFile(b"a"))
    with pytest.raises(OwnerMissing, match="empty"):
        Document().file.save("a.txt", ContentFile(b"a"))


def test_a_plain_owner_value_and_a_short_max_length(client: mediagate.Client) -> None:
    from django.core.files.base import ContentFile
    from gallery.models import ShortName

    owner = unique("plain")
    row = ShortName(owner_name=owner)
    row.file.save("a rather long file name for a short column.pdf", ContentFile(b"%PDF"))
    assert len(row.file.name) <= 40
    assert row.file.name == row.file.name[:32] + "/a r.pdf"  # the id whole, the extension kept
    info = client.file(row.file.name[:32])
    assert info["user_id"] == owner
    assert info["filename"] == "a rather long file name for a short column.pdf"
    with pytest.raises(Exception, match="not a valid mediagate user id"):
        ShortName(owner_name="no spaces allowed").file.save("a.txt", ContentFile(b"a"))


def test_names_survive_migrations() -> None:
    from django.db.migrations.writer import MigrationWriter
    from gallery.models import Document

    field = Document._meta.get_field("file")
    _, _, _, kwargs = field.deconstruct()
    assert MigrationWriter.serialize(kwargs["upload_to"])[0] == "mediagate.django.OwnedBy('owner')"
    assert MigrationWriter.serialize(kwargs["storage"])[0] == "mediagate.django.MediagateStorage()"


@pytest.mark.new_endpoints
def test_prefetch_urls_makes_one_call_per_hundred(
    client: mediagate.Client, admin_calls: List[str]
) -> None:
    from django.core.files.base import ContentFile
    from gallery.models import Document

    from mediagate.django import prefetch_urls
    from mediagate.django.urlcache import url_cache

    owner = make_user("lister")
    docs = []
    for n in range(105):
        doc = Document(owner=owner)
        doc.file.save(f"f{n}.txt", ContentFile(b"x"), save=True)
        docs.append(doc)
    url_cache().clear()
    del admin_calls[:]
    urls = prefetch_urls(d.file for d in docs)
    assert [c.split("?")[0] for c in admin_calls] == ["GET /v1/files", "GET /v1/files"]
    assert len(urls) == 105
    del admin_calls[:]
    page = [d.file.url for d in docs]
    assert admin_calls == [], "every URL of the page came from the cache"
    assert page == [urls[d.file.name] for d in docs]
    assert page[0] == client.file(docs[0].file.name[:32])["url"]
    assert prefetch_urls([None, "", "legacy/x.txt"]) == {}


def test_saving_under_an_upload_name(client: mediagate.Client) -> None:
    from django.core.files.base import ContentFile

    from mediagate.django import MediagateStorage, upload_name

    owner = unique("direct")
    name = MediagateStorage().save(upload_name(owner, "direct.txt"), ContentFile(b"direct"))
    assert STABLE.fullmatch(name) and name.endswith("/direct.txt")
    assert client.file(name[:32])["user_id"] == owner


def test_the_browsers_content_type_is_used_when_well_formed(client: mediagate.Client) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from gallery.models import Document

    owner = make_user("typed")
    sent = Document(owner=owner)
    sent.file.save("scan", SimpleUploadedFile("scan", b"\x89PNG", content_type="Image/PNG; x=1"))
    assert client.file(sent.file.name[:32])["content_type"] == "image/png"
    bad = Document(owner=owner)
    bad.file.save("a.txt", SimpleUploadedFile("a.txt", b"text", content_type="not a type"))
    assert client.file(bad.file.name[:32])["content_type"].startswith("text/plain")


def test_settings_are_checked() -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from mediagate.django.apps import check_settings
    from mediagate.django.conf import config

    assert check_settings() == []
    with override_settings(MEDIAGATE={"ADMIN_URL": "http://127.0.0.1:9"}):
        assert [m.id for m in check_settings()] == ["mediagate.E001"]
    with override_settings(MEDIAGATE={"ADMIN_URL": "http://x", "TOKEN": "t", "TYPO": 1}):
        with pytest.raises(ImproperlyConfigured, match="TYPO"):
            config()
