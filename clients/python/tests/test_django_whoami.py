"""``whoami`` for the ``forward`` session source, on Django's default database sessions, through
Django's own test client (logins by the real login machinery)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import unique

pytestmark = pytest.mark.usefixtures("django_project")


def make_user(**flags: Any) -> Any:
    from django.contrib.auth.models import User

    return User.objects.create_user(unique("who"), password="pw", **flags)


def logged_in(user: Any) -> Any:
    """A test client holding only what mediagate forwards: the ``sessionid`` cookie."""
    from django.test import Client

    browser = Client()
    assert browser.login(username=user.username, password="pw")
    forwarded = Client()
    forwarded.cookies["sessionid"] = browser.cookies["sessionid"].value
    return forwarded


def test_sessions_are_django_defaults() -> None:
    from django.conf import settings
    from django.contrib.sessions.models import Session

    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.db"
    user = make_user()
    logged_in(user)
    assert Session.objects.exists()


def test_anonymous_is_401() -> None:
    from django.test import Client

    response = Client().get("/mediagate/whoami")
    assert response.status_code == 401
    assert "X-Mediagate-User" not in response
    assert response["Cache-Control"] == "no-store"
    unknown = Client()
    unknown.cookies["sessionid"] = "no-such-session"
    assert unknown.get("/mediagate/whoami").status_code == 401


def test_a_user() -> None:
    user = make_user()
    response = logged_in(user).get("/mediagate/whoami")
    assert response.status_code == 200
    assert response["X-Mediagate-User"] == str(user.pk)
    assert "X-Mediagate-Roles" not in response
    assert response["Cache-Control"] == "no-store"
    assert response.content == b""


def test_staff_and_superuser() -> None:
    staff = logged_in(make_user(is_staff=True)).get("/mediagate/whoami")
    assert staff["X-Mediagate-Roles"] == "staff"
    root = logged_in(make_user(is_staff=True, is_superuser=True)).get("/mediagate/whoami")
    assert root["X-Mediagate-Roles"] == "staff,superuser"


def test_groups_that_are_valid_role_names() -> None:
    from django.contrib.auth.models import Group

    user = make_user(is_staff=True)
    for name in ("editors", "ops:readers", "has space", "ümlaut", "x" * 65, "staff"):
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    response = logged_in(user).get("/mediagate/whoami")
    assert response["X-Mediagate-Roles"] == "staff,editors,ops:readers"


def test_groups_can_be_left_out() -> None:
    from django.conf import settings
    from django.contrib.auth.models import Group
    from django.test import override_settings

    user = make_user()
    user.groups.add(Group.objects.get_or_create(name="editors")[0])
    with override_settings(MEDIAGATE={**settings.MEDIAGATE, "WHOAMI_GROUPS": False}):
        assert "X-Mediagate-Roles" not in logged_in(user).get("/mediagate/whoami")


def test_an_inactive_or_logged_out_user_is_401() -> None:
    user = make_user()
    client = logged_in(user)
    user.is_active = False
    user.save()
    assert client.get("/mediagate/whoami").status_code == 401
    other = make_user()
    client = logged_in(other)
    client.logout()
    assert client.get("/mediagate/whoami").status_code == 401


def test_get_only() -> None:
    user = make_user()
    client = logged_in(user)
    assert client.post("/mediagate/whoami").status_code in (403, 405)
    assert client.put("/mediagate/whoami").status_code == 405
