"""A minimal Django project whose logins mediagate must recognise (tests only).

Sessions use the cache backend on django-redis with its JSON serializer, so a session is a
JSON record at ":1:django.contrib.sessions.cache<session key>" in Redis.
Env: REDIS_URL, DJANGO_DB (an SQLite file).
"""
import os

SECRET_KEY = "mediagate-tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["DJANGO_DB"]}}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ["REDIS_URL"],
        "OPTIONS": {"SERIALIZER": "django_redis.serializers.json.JSONSerializer"},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
# Fast hashing: these users exist for one test.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
