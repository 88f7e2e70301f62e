"""Fixtures: one real mediagate for the session, clients of it, and helpers that read what
nginx would serve (through the real auth listener, then the storage root)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator, List, Optional

import httpx
import pytest

import mediagate

from ._server import Server, copy_binary, start_server


@pytest.fixture(scope="session")
def session_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mediagate-py-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def server(session_dir: Path) -> Iterator[Server]:
    missing = None
    try:
        binary = copy_binary(session_dir)
    except FileNotFoundError as e:
        missing = str(e)
    if missing is not None:  # outside the except: one clear line, no chained traceback
        pytest.fail(missing, pytrace=False)
    running = start_server(binary, session_dir)
    yield running
    running.stop()


@pytest.fixture
def client(server: Server) -> Iterator[mediagate.Client]:
    with mediagate.Client(server.admin_url, server.token) as c:
        yield c


@pytest.fixture
def user_id() -> str:
    """A user id no other test uses."""
    return "u-" + uuid.uuid4().hex[:12]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def decide(
    server: Server, url: str, session_id: Optional[str] = None, method: str = "GET"
) -> httpx.Response:
    """Asks the auth listener what nginx asks for ``url`` (a path with optional query)."""
    headers = {"X-Original-URI": url, "X-Original-Method": method}
    if session_id is not None:
        headers["Cookie"] = f"mediagate_session={session_id}"
    return httpx.get(server.auth_url + "/auth", headers=headers, timeout=5.0)


def served_bytes(server: Server, url: str, session_id: Optional[str] = None) -> bytes:
    """The bytes nginx would serve for ``url``: the allowed storage path under the root.
    Independent of ``GET /v1/files/{id}/content``."""
    answer = decide(server, url, session_id)
    assert answer.status_code == 200, f"{url}: {answer.status_code}"
    return (server.storage_root / answer.headers["X-Media-Path"]).read_bytes()


@pytest.fixture(scope="session")
def django_project(server: Server, session_dir: Path) -> Iterator[Path]:
    """The temp Django project, set up in this process (once: Django can't be set up twice)."""
    from ._djproject import load_project, write_project

    root = write_project(session_dir / "project", server)
    load_project(root)
    yield root
    from mediagate.django.conf import reset

    reset()


@pytest.fixture
def admin_calls(django_project: Path) -> Iterator[List[str]]:
    """``"METHOD /path?query"`` of every admin call the Django integration makes meanwhile,
    seen by an event hook on its real httpx client."""
    from mediagate.django import get_client

    seen: List[str] = []

    def hook(request: httpx.Request) -> None:
        seen.append(f"{request.method} {request.url.raw_path.decode()}")

    hooks = get_client().http.event_hooks["request"]
    hooks.append(hook)
    yield seen
    hooks.remove(hook)


@pytest.fixture
def fresh_url_cache(django_project: Path) -> None:
    from mediagate.django.urlcache import url_cache

    url_cache().clear()
