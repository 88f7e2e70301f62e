"""Development mode: ``/media/...`` served by Django, decided by the real auth listener."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import pytest

import mediagate

from ._server import free_port
from .conftest import unique

pytestmark = pytest.mark.usefixtures("django_project")


def uploaded(client: mediagate.Client, name: str = "a b.txt", data: bytes = b"hello") -> Tuple[str, Dict[str, Any]]:
    owner = unique("dev")
    client.ensure_user(owner)
    return owner, dict(client.upload(owner, name, data))


def get(url: str, session: str = "", method: str = "get") -> Any:
    from django.test import Client

    browser = Client()
    if session:
        browser.cookies["mediagate_session"] = session
    return getattr(browser, method)(url)


@pytest.mark.new_endpoints
def test_the_owner_gets_the_bytes_with_nginx_headers(client: mediagate.Client) -> None:
    owner, up = uploaded(client)
    response = get(up["url"], client.create_session(owner)["session_id"])
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"hello"
    assert response["Content-Type"] == client.file(up["file_id"])["content_type"]
    assert response["Content-Type"].startswith("text/plain")
    assert response["Content-Length"] == "5"
    assert response["Content-Disposition"].startswith("inline")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response


@pytest.mark.new_endpoints
def test_active_content_is_a_sandboxed_attachment(client: mediagate.Client) -> None:
    owner, up = uploaded(client, "page.html", b"<script>alert(1)</script>")
    response = get(up["url"], client.create_session(owner)["session_id"])
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Security-Policy"] == "sandbox"


@pytest.mark.new_endpoints
def test_staff_share_links_and_head(client: mediagate.Client) -> None:
    _, up = uploaded(client)
    reader = unique("staff")
    client.ensure_user(reader)
    staff = client.create_session(reader, roles=["staff"])["session_id"]
    assert get(up["url"], staff).status_code == 200
    link = client.share_link(up["file_id"], 60)["url"]  # the query must reach mediagate
    assert b"".join(get(link).streaming_content) == b"hello"
    head = get(up["url"], staff, method="head")
    assert head.status_code == 200 and head["Content-Length"] == "5"


def test_refusals_pass_through(client: mediagate.Client) -> None:
    owner, up = uploaded(client)
    assert get(up["url"]).status_code == 401
    stranger = unique("stranger")
    client.ensure_user(stranger)
    assert get(up["url"], client.create_session(stranger)["session_id"]).status_code == 403
    assert get("/media/not/a/media/path").status_code == 403
    session = client.create_session(owner)["session_id"]
    client.rotate_file_token(up["file_id"])
    assert get(up["url"], session).status_code == 403
    assert get(up["url"], session, method="post").status_code == 403


def test_no_decision_is_503(client: mediagate.Client) -> None:
    from django.conf import settings
    from django.test import override_settings

    _, up = uploaded(client)
    dead = f"http://127.0.0.1:{free_port()}"
    with override_settings(MEDIAGATE={**settings.MEDIAGATE, "AUTH_URL": dead}):
        response = get(up["url"])
    assert response.status_code == 503
    assert response["Retry-After"] == "1"


def test_it_refuses_to_run_without_debug(client: mediagate.Client) -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    import mediagate.django.dev

    _, up = uploaded(client)
    with override_settings(DEBUG=False):
        with pytest.raises(ImproperlyConfigured, match="DEBUG"):
            get(up["url"])
        with pytest.raises(ImproperlyConfigured, match="DEBUG"):
            mediagate.django.dev.media_urlpatterns()
