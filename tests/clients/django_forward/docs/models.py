from django.conf import settings
from django.db import models

from mediagate.django import MediagateStorage, owned_by


class Document(models.Model):
    """The documented setup: uploads filed under the owner's pk, the id whoami sends."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    file = models.FileField(storage=MediagateStorage(), upload_to=owned_by("owner"))


class ToolsMedia(models.Model):
    """A django-tools serve_media_app model (owner in `user`), switched to mediagate and then
    imported with `manage.py mediagate_import`."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    file = models.FileField(storage=MediagateStorage(), max_length=255)
