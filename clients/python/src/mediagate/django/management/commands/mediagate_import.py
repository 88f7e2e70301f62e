"""``manage.py mediagate_import app_label.Model.field --from OLD_MEDIA_ROOT [--owner-field F]
[--dry-run]``: moves a FileField's files from an older storage's directory into mediagate.

See ``mediagate.django.importer`` for what happens to each row. The field must already use
``MediagateStorage`` (switch the storage first, then import), otherwise its new names would
point nowhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Tuple, Type

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import FileField, Model

from ....errors import UnavailableError
from ...conf import get_client
from ...importer import Importer, Report
from ...owners import OwnedBy
from ...storage import MediagateStorage


class Command(BaseCommand):
    help = (
        "Uploads the files an older storage's rows name (a django-tools serve_media_app tree, "
        "a django-private-storage root, any FileSystemStorage) to mediagate under each row's "
        "owner, and points the rows at them. Resumable; the old tree is not changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target", help="app_label.Model.field")
        parser.add_argument(
            "--from", dest="old_root", required=True, help="the old storage's root directory"
        )
        parser.add_argument(
            "--owner-field",
            default=None,
            help="the field naming each row's owner (default: the one given to owned_by in "
            "the field's upload_to, else `user`, django-tools' convention)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="change nothing; say what would be done"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        model, field = _resolve(options["target"])
        if not isinstance(field.storage, MediagateStorage):
            raise CommandError(
                f"{options['target']} does not use MediagateStorage yet: set "
                "storage=MediagateStorage() on the field first, then import"
            )
        old_root = Path(options["old_root"])
        if not old_root.is_dir():
            raise CommandError(f"--from {old_root}: not a directory")
        owner_field = options["owner_field"] or _default_owner_field(field)
        if not _has_attribute(model, owner_field):
            raise CommandError(f"{model.__name__} has no field {owner_field!r} (--owner-field)")
        dry_run = bool(options["dry_run"])
        verbose = int(options.get("verbosity", 1)) >= 2
        importer = Importer(
            model,
            field,
            old_root,
            owner_field,
            client=None if dry_run else get_client(),
            dry_run=dry_run,
            progress=(lambda line: self.stdout.write(line)) if verbose or dry_run else _quiet,
        )
        try:
            report = importer.run()
        except UnavailableError as e:
            raise CommandError(
                f"mediagate stopped answering ({e.message}); what was imported so far is kept: "
                "run the same command again to carry on"
            ) from e
        self._report(report, dry_run)

    def _report(self, report: Report, dry_run: bool) -> None:
        verb = "would import" if dry_run else "imported"
        self.stdout.write(
            f"{verb} {len(report.imported)}, already in mediagate {report.already}, "
            f"could not map {len(report.unmapped)}"
        )
        if report.unmapped:
            self.stdout.write("Could not map (the rows keep their old names):")
            for u in report.unmapped:
                self.stdout.write(f"  pk={u.pk} {u.name!r}: {u.reason}")


def _quiet(line: str) -> None:
    pass


def _resolve(target: str) -> Tuple[Type[Model], FileField]:
    parts = target.split(".")
    if len(parts) != 3:
        raise CommandError(f"{target!r}: expected app_label.Model.field")
    app_label, model_name, field_name = parts
    try:
        model = apps.get_model(app_label, model_name)
        field = model._meta.get_field(field_name)
    except (LookupError, FieldDoesNotExist) as e:
        raise CommandError(f"{target!r}: {e}") from e
    if not isinstance(field, FileField):
        raise CommandError(f"{target!r} is not a FileField")
    return model, field


def _default_owner_field(field: FileField) -> str:
    upload_to = field.upload_to
    return upload_to.field if isinstance(upload_to, OwnedBy) else "user"


def _has_attribute(model: Type[Model], name: str) -> bool:
    try:
        model._meta.get_field(name)
        return True
    except FieldDoesNotExist:
        return hasattr(model, name)
