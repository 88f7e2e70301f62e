"""The Django integration of mediagate (``pip install mediagate[django]``).

- ``MediagateStorage``: a storage backend whose files live in mediagate;
- ``owned_by("FIELD")``: the ``upload_to`` that names each upload's owner;
- ``prefetch_urls(...)``: a page's file URLs in one admin call per hundred;
- ``whoami``: the view for mediagate's ``forward`` session source (``mediagate.django.urls``);
- ``mediagate.django.dev``: serving ``/media/`` without nginx, with DEBUG only;
- ``manage.py mediagate_import``: moving files of an older storage into mediagate.

Add ``"mediagate.django"`` to ``INSTALLED_APPS`` and set ``MEDIAGATE = {"ADMIN_URL": ...,
"TOKEN": ...}`` (every key: ``mediagate.django.conf.DEFAULTS``).
"""

from .conf import get_client
from .names import upload_name
from .owners import OwnedBy, OwnerMissing, owned_by
from .prefetch import prefetch_urls
from .storage import MediagateStorage
from .views import whoami

__all__ = [
    "MediagateStorage",
    "OwnedBy",
    "OwnerMissing",
    "get_client",
    "owned_by",
    "prefetch_urls",
    "upload_name",
    "whoami",
]
