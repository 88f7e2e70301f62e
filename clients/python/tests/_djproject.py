"""A real Django project in a temp dir, configured against the test mediagate.

SQLite, Django's default database sessions, ``mediagate.django`` installed, and a ``gallery``
app whose models cover the cases the tests need. Django is set up once per process, so the
project is written and loaded once per test session.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

from ._server import Server

SETTINGS = '''
SECRET_KEY = "mediagate-python-tests-only"
DEBUG = True
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "mgsite.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "mediagate.django",
    "gallery",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r}}}}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
MEDIAGATE = {{
    "ADMIN_URL": {admin_url!r},
    "TOKEN": {token!r},
    "AUTH_URL": {auth_url!r},
}}
'''

URLS = '''
from django.urls import include, path

import mediagate.django.dev

urlpatterns = [
    path("mediagate/", include("mediagate.django.urls")),
] + mediagate.django.dev.media_urlpatterns()
'''

MODELS = '''
from django.conf import settings
from django.db import models

from mediagate.django import MediagateStorage, owned_by


class Document(models.Model):
    """The documented setup: an owner foreign key, and owned_by("owner")."""
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    file = models.FileField(storage=MediagateStorage(), upload_to=owned_by("owner"))


class Unowned(models.Model):
    """MediagateStorage without owned_by: saving must fail."""
    file = models.FileField(storage=MediagateStorage(), upload_to="uploads/")


class ShortName(models.Model):
    """A plain value as owner, and a short max_length."""
    owner_name = models.CharField(max_length=50, blank=True)
    file = models.FileField(storage=MediagateStorage(), upload_to=owned_by("owner_name"), max_length=40)


class ToolsMedia(models.Model):
    """django-tools serve_media_app's convention: the owner is `user`."""
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+")
    file = models.FileField(storage=MediagateStorage(), max_length=255)


class PrivateDoc(models.Model):
    """A django-private-storage model, moved to mediagate with owned_by("owner")."""
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+")
    file = models.FileField(storage=MediagateStorage(), upload_to=owned_by("owner"), max_length=200)


class NotSwitched(models.Model):
    """A field still on the file system storage: the import refuses it."""
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+")
    file = models.FileField(upload_to="old/")
'''


def write_project(root: Path, server: Server) -> Path:
    """Writes the project under ``root``; returns the directory to put on sys.path."""
    files = {
        "mgsite/__init__.py": "",
        "mgsite/settings.py": SETTINGS.format(
            db=str(root / "db.sqlite3"),
            admin_url=server.admin_url,
            token=server.token,
            auth_url=server.auth_url,
        ),
        "mgsite/urls.py": URLS,
        "gallery/__init__.py": "",
        "gallery/models.py": MODELS,
        "manage.py": textwrap.dedent(
            """
            import os, sys
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mgsite.settings")
            from django.core.management import execute_from_command_line
            execute_from_command_line(sys.argv)
            """
        ),
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def load_project(root: Path) -> None:
    """Sets Django up with the project and creates its tables."""
    import django
    from django.core.management import call_command

    sys.path.insert(0, str(root))
    os.environ["DJANGO_SETTINGS_MODULE"] = "mgsite.settings"
    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
