"""``owned_by("FIELD")``: an ``upload_to`` that files each upload under the user a model field
names.

The mediagate user id is the value the field holds: for a foreign key, the related object's
primary key as a string (the same id ``whoami`` sends, ``str(request.user.pk)``); for any other
field or attribute, its value as a string. ``owned_by`` writes it into the pending name
(``names.upload_name``), from which ``MediagateStorage._save`` reads it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model
from django.utils.deconstruct import deconstructible

from .names import is_valid_id, upload_name

__all__ = ["OwnerMissing", "OwnedBy", "owned_by", "owner_id"]


class OwnerMissing(ValueError):
    """An upload to ``MediagateStorage`` with no owner to file it under: no ``owned_by`` in
    ``upload_to``, an empty owner field, or an owner that is not a valid mediagate user id."""


def owner_id(instance: Model, field_name: str) -> str:
    """The mediagate user id that ``instance``'s ``field_name`` names (see the module)."""
    label = f"{type(instance).__name__}.{field_name}"
    try:
        field: Any = instance._meta.get_field(field_name)
    except FieldDoesNotExist:
        field = None
    is_relation = getattr(field, "many_to_one", False) or getattr(field, "one_to_one", False)
    if field is not None and is_relation:
        if not getattr(field, "concrete", False):
            raise OwnerMissing(f"{label} is a reverse relation; name the forward foreign key")
        if field.target_field.primary_key:
            value = getattr(instance, field.attname)  # the pk itself, no query
        else:
            related = getattr(instance, field.name)  # to_field: the pk is on the object
            value = None if related is None else related.pk
    elif field is not None:
        value = getattr(instance, field.attname)
    elif hasattr(instance, field_name):
        value = getattr(instance, field_name)
    else:
        raise OwnerMissing(f"{label} does not exist (given to owned_by)")
    if value is None or value == "":
        raise OwnerMissing(
            f"{label} is empty: mediagate files every upload under its owner; set it before "
            "saving the file"
        )
    user_id = str(value)
    if not is_valid_id(user_id):
        raise OwnerMissing(
            f"{label} = {user_id!r} is not a valid mediagate user id "
            "(1-128 characters of A-Z a-z 0-9 . _ @ -)"
        )
    return user_id


@deconstructible(path="mediagate.django.OwnedBy")
class OwnedBy:
    """``upload_to=owned_by("owner")``: see the module. A class rather than a closure so that
    migrations can serialize it."""

    def __init__(self, field: str) -> None:
        if not field or not isinstance(field, str):
            raise ValueError("owned_by needs the name of the model field that holds the owner")
        self.field = field

    def __call__(self, instance: Model, filename: str) -> str:
        return upload_name(owner_id(instance, self.field), filename)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OwnedBy) and other.field == self.field

    def __hash__(self) -> int:
        return hash((OwnedBy, self.field))

    def __repr__(self) -> str:
        return f"owned_by({self.field!r})"


#: The documented spelling: ``upload_to=owned_by("owner")``.
owned_by = OwnedBy
