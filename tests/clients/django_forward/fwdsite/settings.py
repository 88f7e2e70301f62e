"""A Django project as a site would have it before adopting mediagate: Django's default
database sessions (SQLite), its own login views. The only mediagate pieces are the app, the
storage on a FileField and the whoami view (tests only).

Env: DJANGO_DIR (a temp dir for the database), MEDIAGATE_ADMIN_URL, MEDIAGATE_TOKEN.
"""
import os
from pathlib import Path

SECRET_KEY = "mediagate-e2e-tests-only-not-a-secret"
# As in production: no debug pages, and the host check on.
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "fwdsite.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "mediagate.django",
    "docs",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(Path(os.environ["DJANGO_DIR"]) / "db.sqlite3"),
    }
}
# No SESSION_ENGINE: the default, database sessions, which mediagate cannot read itself.
LOGIN_REDIRECT_URL = "/mediagate/whoami"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# Fast hashing: these users exist for one test.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
MEDIAGATE = {
    "ADMIN_URL": os.environ["MEDIAGATE_ADMIN_URL"],
    "TOKEN": os.environ["MEDIAGATE_TOKEN"],
}
