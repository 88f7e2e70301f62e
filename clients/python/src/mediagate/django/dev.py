"""Development mode: ``/media/...`` served by Django itself, without nginx. NOT FOR PRODUCTION.

Like django-sendfile2's development backend, this lets ``runserver`` show private files while
deciding access exactly as production does: for each request it asks mediagate's auth listener
the question nginx asks (``GET /auth`` with ``X-Original-URI``, ``X-Original-Method`` and the
client's ``Cookie`` and ``Authorization``), then streams the allowed file's bytes from the
admin API with the headers nginx would add. It refuses to run unless ``settings.DEBUG`` is
true: every byte passes through a Django worker, there is no Range support, and the admin
token is used for every read.

    # urls.py
    if settings.DEBUG:
        urlpatterns += mediagate.django.dev.media_urlpatterns()
"""

from __future__ import annotations

import re
from typing import List

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.urls import URLPattern, re_path

from ..errors import Error
from .conf import config, get_client

__all__ = ["serve", "media_urlpatterns"]

_STORAGE_PATH_RE = re.compile(r"[0-9a-f]{2}/([0-9a-f]{32})")


def _refuse_unless_debug() -> None:
    if not settings.DEBUG:
        raise ImproperlyConfigured(
            "mediagate.django.dev serves media only with DEBUG = True; in production nginx "
            "serves /media/ (see `mediagate nginx-config`)"
        )


def media_urlpatterns() -> List[URLPattern]:
    """The development media URL, at ``MEDIAGATE["MEDIA_PREFIX"]`` (default ``/media/``)."""
    _refuse_unless_debug()
    prefix = re.escape(config().media_prefix.lstrip("/"))
    return [re_path(rf"^{prefix}", serve, name="mediagate-dev-media")]


def _raw_uri(request: HttpRequest) -> str:
    """The request's URI as the client sent it, when the server passes it on (gunicorn,
    uWSGI); otherwise Django's re-encoding of the path, which mediagate reads the same way."""
    for key in ("RAW_URI", "REQUEST_URI"):
        raw = request.META.get(key)
        if isinstance(raw, str) and raw.startswith("/"):
            return raw
    return request.get_full_path()


def _status(code: int) -> HttpResponse:
    response = HttpResponse(status=code)
    response["Cache-Control"] = "no-store"
    if code == 503:
        response["Retry-After"] = "1"
    return response


def serve(request: HttpRequest) -> HttpResponseBase:
    """One media request, decided by mediagate (see the module)."""
    _refuse_unless_debug()
    cfg = config()
    question = {"X-Original-URI": _raw_uri(request), "X-Original-Method": request.method or ""}
    for meta, header in (("HTTP_COOKIE", "Cookie"), ("HTTP_AUTHORIZATION", "Authorization")):
        if meta in request.META:
            question[header] = request.META[meta]
    try:
        answer = httpx.get(cfg.auth_url + "/auth", headers=question, timeout=cfg.timeout)
    except httpx.HTTPError:
        return _status(503)
    if answer.status_code in (401, 403):
        return _status(answer.status_code)
    stored = _STORAGE_PATH_RE.fullmatch(answer.headers.get("X-Media-Path", ""))
    if answer.status_code != 200 or stored is None:
        return _status(503)
    try:
        stream = get_client().open(stored.group(1))
    except Error as e:
        return _status(404 if e.code == "file_not_found" else 503)
    response: HttpResponseBase
    if request.method == "HEAD":
        stream.close()
        response = HttpResponse()
    else:
        response = StreamingHttpResponse(stream.iter_chunks())
    response["Content-Type"] = answer.headers.get("X-Media-Type") or stream.content_type
    if stream.size is not None:
        response["Content-Length"] = str(stream.size)
    for source, target in (
        ("X-Media-Disposition", "Content-Disposition"),
        ("X-Media-CSP", "Content-Security-Policy"),
    ):
        if source in answer.headers:
            response[target] = answer.headers[source]
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-cache"
    return response
