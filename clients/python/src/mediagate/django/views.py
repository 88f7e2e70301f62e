"""``whoami``: the endpoint mediagate's ``forward`` session source asks who a caller is.

mediagate forwards only the configured cookies (``sessionid``) and, if configured, the
``Authorization`` header, and reads the answer's headers: 200 with ``X-Mediagate-User`` is a
session, 401 is none. So this view works with whatever session backend the site uses,
Django's default database sessions included. It answers GET only (no CSRF token comes with
the forwarded request, so nothing here may change state), and nothing may cache the answer.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, List, TypeVar

from django.contrib.auth import decorators as auth_decorators
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .conf import option
from .names import is_valid_id

__all__ = ["whoami", "roles_of", "ROLE_RE", "MAX_ROLES"]

logger = logging.getLogger("mediagate.django")

#: What mediagate accepts as a role name; group names outside it are left out.
ROLE_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")

#: Most roles sent (mediagate's own sessions take at most 32); staff and superuser come first.
MAX_ROLES = 32

_View = TypeVar("_View", bound=Callable[..., HttpResponse])


def _login_not_required(view: _View) -> _View:
    """Exempts the view from ``LoginRequiredMiddleware`` (Django 5.1+), which would answer a
    redirect that mediagate can only read as "cannot decide" (503)."""
    mark: Any = getattr(auth_decorators, "login_not_required", None)
    return view if mark is None else mark(view)


def roles_of(user: Any, with_groups: bool = True) -> List[str]:
    """``staff`` (``is_staff``), ``superuser`` (``is_superuser``), then the user's group names
    that are valid role names, sorted; at most ``MAX_ROLES``."""
    roles: List[str] = []
    if getattr(user, "is_staff", False):
        roles.append("staff")
    if getattr(user, "is_superuser", False):
        roles.append("superuser")
    groups = getattr(user, "groups", None)
    if with_groups and groups is not None:
        for name in sorted(groups.values_list("name", flat=True)):
            if ROLE_RE.fullmatch(name) and name not in roles:
                roles.append(name)
    return roles[:MAX_ROLES]


def _answer(status: int) -> HttpResponse:
    response = HttpResponse(status=status)
    response["Cache-Control"] = "no-store"
    return response


@_login_not_required
@require_GET
def whoami(request: HttpRequest) -> HttpResponse:
    """200 with ``X-Mediagate-User: <pk>`` and ``X-Mediagate-Roles`` for a logged-in, active
    user; 401 otherwise (403 for a user whose pk is not a valid mediagate id)."""
    if not hasattr(request, "user"):
        raise ImproperlyConfigured(
            "mediagate.django.whoami needs django.contrib.auth.middleware.AuthenticationMiddleware"
        )
    user: Any = request.user
    if not user.is_authenticated or not getattr(user, "is_active", True):
        return _answer(401)
    user_id = str(user.pk)
    if not is_valid_id(user_id):
        logger.warning(
            "whoami: user pk %r is not a valid mediagate user id; answering 403", user_id
        )
        return _answer(403)
    response = _answer(200)
    response["X-Mediagate-User"] = user_id
    roles = roles_of(user, with_groups=bool(option("WHOAMI_GROUPS")))
    if roles:
        response["X-Mediagate-Roles"] = ",".join(roles)
    return response
