"""The Django app (``"mediagate.django"`` in ``INSTALLED_APPS``): it brings the
``mediagate_import`` command and checks the ``MEDIAGATE`` setting at start-up."""

from __future__ import annotations

from typing import Any, List

from django.apps import AppConfig
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


class MediagateConfig(AppConfig):
    name = "mediagate.django"
    label = "mediagate"
    verbose_name = "mediagate"

    def ready(self) -> None:
        checks.register(check_settings, checks.Tags.compatibility)


def check_settings(app_configs: Any = None, **kwargs: Any) -> List[checks.CheckMessage]:
    """``manage.py check`` (and runserver) name a broken ``MEDIAGATE`` setting before the
    first upload does."""
    from .conf import config

    try:
        config()
    except ImproperlyConfigured as e:
        return [checks.Error(str(e), id="mediagate.E001")]
    return []
