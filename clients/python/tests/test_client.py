"""Every ``mediagate.Client`` method against the real binary: answers, and refusals with the
API's status and code."""

from __future__ import annotations

import re
import tempfile
from typing import Any, Iterator, List

import httpx
import pytest

import mediagate

from ._server import Server, free_port
from .conftest import decide, served_bytes, unique


def session_of(client: mediagate.Client, user_id: str) -> str:
    return client.create_session(user_id)["session_id"]


def expect_error(status: int, code: str) -> Any:
    return pytest.raises(mediagate.Error, match=re.escape(f"{status} {code}:"))


def test_ensure_user_is_idempotent(client: mediagate.Client, user_id: str) -> None:
    first = client.ensure_user(user_id)
    assert first["user_id"] == user_id
    assert re.fullmatch(r"[0-9a-f]{32}", first["user_token"])
    assert client.ensure_user(user_id) == first


def test_upload_bytes_then_file_metadata(
    server: Server, client: mediagate.Client, user_id: str
) -> None:
    client.ensure_user(user_id)
    up = client.upload(user_id, "Q1 report.txt", b"hello")
    assert up["size"] == 5
    assert up["content_type"].startswith("text/plain")  # a charset may follow
    assert up["url"].startswith("/media/") and up["url"].endswith("/Q1%20report.txt")
    info = client.file(up["file_id"])
    assert info["file_id"] == up["file_id"]
    assert info["user_id"] == user_id
    assert info["filename"] == "Q1 report.txt"
    assert info["url"] == up["url"]
    assert (info["visibility"], info["disposition"], info["downloads"]) == ("private", "inline", 0)
    assert served_bytes(server, up["url"], session_of(client, user_id)) == b"hello"


def test_upload_with_a_content_type(client: mediagate.Client, user_id: str) -> None:
    client.ensure_user(user_id)
    up = client.upload(user_id, "data", b"%PDF-1.4", content_type="application/pdf")
    assert up["content_type"] == "application/pdf"


def test_upload_from_a_file_sends_its_length(
    server: Server, client: mediagate.Client, user_id: str
) -> None:
    client.ensure_user(user_id)
    sent: List[httpx.Request] = []
    client.http.event_hooks["request"].append(sent.append)
    with tempfile.TemporaryFile() as f:
        f.write(b"skip me|" + b"x" * 100_000)
        f.seek(8)  # from the current position, as a file object is read
        up = client.upload(user_id, "x.bin", f)
    assert up["size"] == 100_000
    assert sent[-1].headers["Content-Length"] == "100000"
    assert "Transfer-Encoding" not in sent[-1].headers
    assert served_bytes(server, up["url"], session_of(client, user_id)) == b"x" * 100_000


def test_upload_from_an_iterable_goes_chunked(
    server: Server, client: mediagate.Client, user_id: str
) -> None:
    client.ensure_user(user_id)
    sent: List[httpx.Request] = []
    client.http.event_hooks["request"].append(sent.append)
    up = client.upload(user_id, "parts.txt", iter([b"one ", b"two ", b"three"]))
    assert sent[-1].headers.get("Transfer-Encoding") == "chunked"
    assert up["size"] == 13
    assert served_bytes(server, up["url"], session_of(client, user_id)) == b"one two three"


def test_upload_refusals(client: mediagate.Client, user_id: str) -> None:
    with expect_error(404, "user_not_found"):
        client.upload(user_id, "a.txt", b"no such user yet")
    client.ensure_user(user_id)
    with expect_error(400, "invalid_input") as e:
        client.upload(user_id, "..", b"nothing usable in the name")
    assert (e.value.status, e.value.code) == (400, "invalid_input")
    assert e.value.message
    with pytest.raises(TypeError):
        client.upload(user_id, "a.txt", "text, not bytes")  # type: ignore[arg-type]


def test_an_oversized_upload_is_413_and_the_client_stays_usable(
    client: mediagate.Client, user_id: str
) -> None:
    client.ensure_user(user_id)
    megabyte = b"x" * (1024 * 1024)
    with expect_error(413, "payload_too_large"):  # declared length: refused up front
        client.upload(user_id, "big.bin", iter([megabyte] * 49), size=49 * len(megabyte))
    with expect_error(413, "payload_too_large"):  # chunked: refused part-way
        client.upload(user_id, "big.bin", iter([megabyte] * 49))
    assert client.ensure_user(user_id)["user_id"] == user_id


def test_rotate_user_token_changes_every_url(
    server: Server, client: mediagate.Client, user_id: str
) -> None:
    before = client.ensure_user(user_id)
    up = client.upload(user_id, "a.txt", b"a")
    session = session_of(client, user_id)
    after = client.rotate_user_token(user_id)
    assert after["user_id"] == user_id and after["user_token"] != before["user_token"]
    new_url = client.file(up["file_id"])["url"]
    assert new_url != up["url"] and after["user_token"] in new_url
    assert decide(server, up["url"], session).status_code == 403
    assert decide(server, new_url, session).status_code == 200
    with expect_error(404, "user_not_found"):
        client.rotate_user_token(unique("nobody"))


def test_delete_user_removes_its_files(client: mediagate.Client, user_id: str) -> None:
    client.ensure_user(user_id)
    up = client.upload(user_id, "a.txt", b"a")
    assert client.delete_user(user_id) == {}
    with expect_error(404, "file_not_found"):
        client.file(up["file_id"])
    with expect_error(404, "user_not_found"):
        client.delete_user(user_id)


def test_delete_file(server: Server, client: mediagate.Client, user_id: str) -> None:
    client.ensure_user(user_id)
    up = client.upload(user_id, "a.txt", b"a")
    assert client.delete_file(up["file_id"]) == {}
    assert decide(server, up["url"], session_of(client, user_id)).status_code == 403
    with expect_error(404, "file_not_found"):
        client.delete_file(up["file_id"])


def test_rotate_file_token(server: Server, client: mediagate.Client, user_id: str) -> None:
    client.ensure_user(user_id)
    up = client.upload(user_id, "a.txt", b"a")
    rotated = client.rotate_file_token(up["file_id"])
    assert rotated["file_id"] == up["file_id"]
    assert rotated["file_token"] != up["file_token"] and rotated["url"] != up["url"]
    assert client.file(up["file_id"])["url"] == rotated["url"]
    session = session_of(client, user_id)
    assert decide(server, up["url"], session).status_code == 403
    assert decide(server, rotated["url"], session).status_code == 200
    with expect_error(404, "file_not_found"):
        client.rotate_file_token("0" * 32)


def test_visibility_and_disposition(
    server: Server, client: mediagate.Client, user_id: str
) -> None:
    client.ensure_user(user_id)
    up = client.upload(user_id, "a.txt", b"a")
    assert decide(server, up["url"]).status_code == 401
    assert client.set_visibility(up["file_id"], "public")["visibility"] == "public"
    assert decide(server, up["url"]).status_code == 200
    assert client.set_disposition(up["file_id"], "attachment")["disposition"] == "attachment"
    assert decide(server, up["url"]).headers["X-Media-Disposition"].startswith("attachment")
    with expect_error(400, "invalid_input"):
        client.set_visibility(up["file_id"], "everyone")
    with expect_error(404, "file_not_found"):
        client.set_disposition("f" * 32, "inline")


def test_grant_and_revoke(server: Server, client: mediagate.Client, user_id: str) -> None:
    bob = unique("bob")
    client.ensure_user(user_id)
    client.ensure_user(bob)
    up = client.upload(user_id, "a.txt", b"a")
    bobs = session_of(client, bob)
    assert decide(server, up["url"], bobs).status_code == 403
    assert client.grant(up["file_id"], bob) == {"file_id": up["file_id"], "user_id": bob}
    assert bob in client.file(up["file_id"]).get("grants", [bob])
    assert decide(server, up["url"], bobs).status_code == 200
    assert client.revoke_grant(up["file_id"], bob) == {}
    assert decide(server, up["url"], bobs).status_code == 403
    assert client.revoke_grant(up["file_id"], bob) == {}  # not shared: still fine
    with expect_error(404, "user_not_found"):
        client.grant(up["file_id"], unique("nobody"))


def test_share_link(server: Server, client: mediagate.Client, user_id: str) -> None:
    client.ensure_user(user_id)
    up = client.upload(user_id, "a.txt", b"a")
    link = client.share_link(up["file_id"], 60)
    assert link["url"].startswith(up["url"] + "?") and link["expires_at"]
    assert decide(server, link["url"]).status_code == 200
    client.rotate_file_token(up["file_id"])
    assert decide(server, link["url"]).status_code == 403
    with expect_error(400, "invalid_input"):
        client.share_link(up["file_id"], 0)


def test_sessions_and_logouts(server: Server, client: mediagate.Client, user_id: str) -> None:
    client.ensure_user(user_id)
    up = client.upload(user_id, "a.txt", b"a")
    s = client.create_session(user_id, ttl_seconds=600, roles=["reader"])
    assert re.fullmatch(r"[0-9a-f]{64}", s["session_id"]) and s["expires_at"]
    assert decide(server, up["url"], s["session_id"]).status_code == 200
    assert client.logout(s["session_id"]) == {}
    assert decide(server, up["url"], s["session_id"]).status_code == 401
    with expect_error(404, "session_not_found"):
        client.logout(s["session_id"])
    with expect_error(400, "invalid_input"):
        client.logout("not-a-session-id")
    others = [session_of(client, user_id) for _ in range(2)]
    assert client.logout_everywhere(user_id) == {"sessions": 2}
    assert all(decide(server, up["url"], o).status_code == 401 for o in others)
    with expect_error(404, "user_not_found"):
        client.logout_everywhere(unique("nobody"))
    with expect_error(404, "user_not_found"):
        client.create_session(unique("nobody"))
    with expect_error(400, "invalid_input"):
        client.create_session(user_id, roles=["not a role"])
    with pytest.raises(TypeError):
        client.create_session(user_id, roles="staff")


def test_a_staff_session_reads_every_file(
    server: Server, client: mediagate.Client, user_id: str
) -> None:
    client.ensure_user(user_id)
    up = client.upload(user_id, "a.txt", b"a")
    reader = unique("staff")
    client.ensure_user(reader)
    staff = client.create_session(reader, roles=["staff"])["session_id"]
    assert decide(server, up["url"], staff).status_code == 200


def all_events(client: mediagate.Client) -> Iterator[mediagate.types.Event]:
    after = None
    while True:
        page = client.events(after=after, limit=1000)
        if not page["events"]:
            return
        yield from page["events"]
        after = page["next"]


def test_events(client: mediagate.Client, user_id: str) -> None:
    client.ensure_user(user_id)
    up = client.upload(user_id, "a.txt", b"a")
    client.rotate_file_token(up["file_id"])
    for _ in range(100):
        kinds = [e["kind"] for e in all_events(client) if e["file_id"] == up["file_id"]]
        if len(kinds) >= 2:
            break
    assert kinds[:2] == ["upload", "rotate_file_token"]
    page = client.events(limit=1)
    assert len(page["events"]) == 1 and page["next"] == page["events"][0]["id"]
    with expect_error(400, "invalid_input"):
        client.events(limit=0)
    with expect_error(400, "invalid_input"):
        client.events(after="not-a-cursor")


def test_a_wrong_token_is_unauthorized(server: Server) -> None:
    with mediagate.Client(server.admin_url, "wrong-token-0123456789") as wrong:
        with expect_error(401, "unauthorized") as e:
            wrong.ensure_user("alice")
    assert e.value.status == 401 and e.value.code == "unauthorized"


def test_no_answer_is_unavailable() -> None:
    with mediagate.Client(f"http://127.0.0.1:{free_port()}", "t" * 20, timeout=2) as dead:
        with pytest.raises(mediagate.UnavailableError) as e:
            dead.file("0" * 32)
    assert isinstance(e.value, mediagate.Error)
    assert (e.value.status, e.value.code) == (None, "unavailable")


def test_ids_are_percent_encoded(client: mediagate.Client) -> None:
    with expect_error(400, "invalid_input"):
        client.ensure_user("a/b")  # one segment, refused as an id, not another route
    with expect_error(400, "invalid_input"):
        client.file("bad id!")
    with expect_error(404, "file_not_found"):
        client.file("not-one-of-ours")
    dots = client.ensure_user("..")  # a valid id that must not read as "parent directory"
    assert dots["user_id"] == ".."
    with pytest.raises(ValueError):
        client.delete_user("")


def test_the_client_is_a_context_manager(server: Server) -> None:
    with mediagate.Client(server.admin_url, server.token) as c:
        c.ensure_user(unique("cm"))
    assert c.http.is_closed


def test_files_of_no_ids_calls_nothing(client: mediagate.Client) -> None:
    sent: List[httpx.Request] = []
    client.http.event_hooks["request"].append(sent.append)
    assert client.files([]) == {"files": []}
    assert sent == []
    with pytest.raises(ValueError):
        client.files(["a,b"])
