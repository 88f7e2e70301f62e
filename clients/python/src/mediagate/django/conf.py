"""The ``MEDIAGATE`` setting, read once and checked, and the process's shared admin client.

Every key and its default is in ``DEFAULTS``; an unknown key is an error (a typo would
otherwise fall back to a default without a word). The client is built on first use, per
process: a worker forked from a parent that already had one (gunicorn ``--preload``) builds its
own instead of sharing the parent's sockets.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from ..client import Client

__all__ = ["DEFAULTS", "Config", "config", "get_client", "option", "reset"]

#: Every key of ``settings.MEDIAGATE`` and its default (None: required).
DEFAULTS: Dict[str, Any] = {
    # The admin listener (required).
    "ADMIN_URL": None,
    # An admin token (required, unless TOKEN_FILE names a file holding one).
    "TOKEN": None,
    "TOKEN_FILE": None,
    # Seconds for each connect, read and write of an admin call.
    "TIMEOUT": 10.0,
    # Put before the /media/... paths that FieldFile.url returns, e.g. "https://media.example.com".
    "BASE_URL": "",
    # How long a file's URL is reused without asking mediagate (0: ask every time).
    "URL_CACHE_SECONDS": 30,
    # Most URLs kept per process (least recently used go first).
    "URL_CACHE_SIZE": 10000,
    # whoami: also send the user's group names as roles.
    "WHOAMI_GROUPS": True,
    # Development mode only: the auth listener, and the media prefix it decides for.
    "AUTH_URL": "http://127.0.0.1:9090",
    "MEDIA_PREFIX": "/media/",
}


@dataclass(frozen=True)
class Config:
    admin_url: str
    token: str
    timeout: float
    base_url: str
    url_cache_seconds: float
    url_cache_size: int
    whoami_groups: bool
    auth_url: str
    media_prefix: str


_lock = threading.Lock()
_config: Optional[Config] = None
_client: Optional[Client] = None
_client_pid: Optional[int] = None


def _read() -> Config:
    given = getattr(settings, "MEDIAGATE", None)
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ImproperlyConfigured("settings.MEDIAGATE must be a dict")
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ImproperlyConfigured(
            f"settings.MEDIAGATE has unknown keys {unknown}; known: {sorted(DEFAULTS)}"
        )
    values = {**DEFAULTS, **given}
    token = values["TOKEN"]
    if not token and values["TOKEN_FILE"]:
        token = _token_from(Path(values["TOKEN_FILE"]))
    if not values["ADMIN_URL"] or not token:
        raise ImproperlyConfigured(
            'settings.MEDIAGATE needs "ADMIN_URL" (the admin listener, e.g. '
            '"http://127.0.0.1:9091") and "TOKEN" (or "TOKEN_FILE")'
        )
    prefix = str(values["MEDIA_PREFIX"])
    if not (prefix.startswith("/") and prefix.endswith("/")):
        raise ImproperlyConfigured('settings.MEDIAGATE["MEDIA_PREFIX"] must start and end with "/"')
    return Config(
        admin_url=str(values["ADMIN_URL"]),
        token=str(token),
        timeout=float(values["TIMEOUT"]),
        base_url=str(values["BASE_URL"] or "").rstrip("/"),
        url_cache_seconds=max(float(values["URL_CACHE_SECONDS"]), 0.0),
        url_cache_size=max(int(values["URL_CACHE_SIZE"]), 1),
        whoami_groups=bool(values["WHOAMI_GROUPS"]),
        auth_url=str(values["AUTH_URL"]).rstrip("/"),
        media_prefix=prefix,
    )


def _token_from(path: Path) -> str:
    """The first non-empty line of a token file (a mounted Kubernetes Secret, say)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise ImproperlyConfigured(f'settings.MEDIAGATE["TOKEN_FILE"]: {e}') from e
    for line in lines:
        if line.strip():
            return line.strip()
    raise ImproperlyConfigured(f'settings.MEDIAGATE["TOKEN_FILE"]: {path} holds no token')


def option(key: str) -> Any:
    """One key of the setting with its default, without requiring the admin settings (for
    ``whoami``, which never calls the admin API)."""
    given = getattr(settings, "MEDIAGATE", None) or {}
    return given.get(key, DEFAULTS[key]) if isinstance(given, dict) else DEFAULTS[key]


def config() -> Config:
    """The checked settings (read again after ``override_settings``)."""
    global _config
    with _lock:
        if _config is None:
            _config = _read()
        return _config


def get_client() -> Client:
    """This process's admin client, built from the settings on first use."""
    global _client, _client_pid
    cfg = config()
    with _lock:
        if _client is None or _client_pid != os.getpid():
            _client = Client(cfg.admin_url, cfg.token, timeout=cfg.timeout)
            _client_pid = os.getpid()
        return _client


def reset() -> None:
    """Forgets the settings and the client (after a settings change)."""
    global _config, _client, _client_pid
    with _lock:
        old, pid = _client, _client_pid
        _config, _client, _client_pid = None, None, None
    if old is not None and pid == os.getpid():
        old.close()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "MEDIAGATE":
        reset()


setting_changed.connect(_on_setting_changed)
