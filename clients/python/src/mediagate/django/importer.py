"""Moving the files of an older storage into mediagate, row by row (``mediagate_import``).

For each row whose field still holds an old name, the file is found under the old root (the
name is a path relative to it: a django-tools ``serve_media_app`` tree
``{user_token}/{file_token}/{name}``, a django-private-storage root, any FileSystemStorage),
uploaded under the row's owner, and the row's field (that column only) is pointed at the new
stable name, on the condition that it still holds the old one.

Why it is safe to stop and run again at any point: a row changes only after its upload
succeeded, and rows already holding a stable name are skipped, so a second run carries on
where the first stopped. An interrupted run leaves at most one uploaded file no row points at
(the one in flight). The old tree is only ever opened for reading.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field as dataclass_field
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Tuple, Type, Union

from django.db.models import FileField, Model

from ..client import Client
from ..errors import Error, UnavailableError
from . import names
from .owners import OwnerMissing, owner_id

__all__ = ["Importer", "Report", "Unmapped"]

_BATCH = 500


@dataclass(frozen=True)
class Unmapped:
    """A row whose file could not be imported, and why."""

    pk: Any
    name: str
    reason: str


@dataclass
class Report:
    imported: List[Tuple[Any, str, str]] = dataclass_field(default_factory=list)
    """(pk, old name, new name); in a dry run, the new name is the owner it would go to."""
    already: int = 0
    """Rows that hold a mediagate name already (imported by an earlier run)."""
    unmapped: List[Unmapped] = dataclass_field(default_factory=list)


@dataclass(frozen=True)
class _Plan:
    pk: Any
    name: str
    path: Path
    owner: str


class Importer:
    """Imports ``model.field`` from ``old_root``; ``owner_field`` names each row's owner."""

    def __init__(
        self,
        model: Type[Model],
        field: FileField,
        old_root: Path,
        owner_field: str,
        client: Optional[Client],
        dry_run: bool = False,
        progress: Callable[[str], None] = lambda line: None,
    ) -> None:
        if not dry_run and client is None:
            raise ValueError("an import that is not a dry run needs a client")
        self.model = model
        self.field = field
        self.old_root = old_root.resolve()
        self.owner_field = owner_field
        self.client = client
        self.dry_run = dry_run
        self.progress = progress

    def run(self) -> Report:
        """Imports every row (see the module); a lost connection to mediagate stops the run
        (``UnavailableError``) with everything done so far kept."""
        report = Report()
        for row in self._rows():
            name = getattr(row, self.field.attname).name or ""  # through the FieldFile
            outcome = self._plan(row, name)
            if outcome is None:
                report.already += 1
            elif isinstance(outcome, Unmapped):
                report.unmapped.append(outcome)
            elif self.dry_run:
                report.imported.append((outcome.pk, name, f"(owner {outcome.owner})"))
                self.progress(f"would import pk={outcome.pk} {name!r} for {outcome.owner}")
            else:
                done = self._import(outcome)
                if isinstance(done, Unmapped):
                    report.unmapped.append(done)
                else:
                    report.imported.append((outcome.pk, name, done))
                    self.progress(f"imported pk={outcome.pk} {name!r} -> {done!r}")
        return report

    def _rows(self) -> Iterator[Model]:
        """Every row with a name in the field, in primary-key order, read in batches by
        primary key (a cursor held open over a table being updated is unsafe on SQLite).
        Through the base manager, so that a default manager's filter hides no row."""
        column = self.field.name
        manager = self.model._base_manager
        pks = list(
            manager.exclude(**{column: ""})
            .exclude(**{f"{column}__isnull": True})
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for start in range(0, len(pks), _BATCH):
            yield from manager.filter(pk__in=pks[start : start + _BATCH]).order_by("pk")

    def _plan(self, row: Model, name: str) -> Union[None, Unmapped, _Plan]:
        """None for a row imported already, an Unmapped with the reason, or what to upload."""
        path, problem = self._locate(name)
        if names.file_id_of(name) is not None and path is None:
            return None  # a stable name, and no old file of that name: imported already
        if path is None:
            return Unmapped(row.pk, name, problem)
        try:
            owner = owner_id(row, self.owner_field)
        except OwnerMissing as e:
            return Unmapped(row.pk, name, f"no owner: {e}")
        return _Plan(row.pk, name, path, owner)

    def _locate(self, name: str) -> Tuple[Optional[Path], str]:
        """The old file a name stands for, or None and why not. Symlinks are followed only
        while they stay inside the old root."""
        relative = name.replace("\\", "/")
        candidate = Path(relative) if os.path.isabs(relative) else self.old_root / relative
        try:
            real = candidate.resolve()
        except (OSError, RuntimeError) as e:
            return None, f"cannot resolve the path: {e}"
        if self.old_root not in real.parents:
            return None, f"outside {self.old_root}"
        if not real.exists():
            return None, f"missing file ({real})"
        if not real.is_file():
            return None, f"not a regular file ({real})"
        return real, ""

    def _import(self, plan: _Plan) -> Union[str, Unmapped]:
        """Uploads one file and points its row at it; the new name, or why not."""
        assert self.client is not None
        filename = names.basename(plan.name)
        try:
            self.client.ensure_user(plan.owner)
            with open(plan.path, "rb") as f:
                upload = self.client.upload(plan.owner, filename, f)
        except UnavailableError:
            raise
        except Error as e:
            return Unmapped(plan.pk, plan.name, f"mediagate refused it: {e}")
        except OSError as e:
            return Unmapped(plan.pk, plan.name, f"cannot read it: {e}")
        try:
            new_name = names.stable_name(upload["file_id"], filename, self.field.max_length)
            column = self.field.attname
            updated = (
                self.model._base_manager.filter(pk=plan.pk, **{column: plan.name})
                .update(**{column: new_name})
            )
        except BaseException:
            self._discard(upload["file_id"])
            raise
        if updated != 1:
            self._discard(upload["file_id"])
            return Unmapped(plan.pk, plan.name, "the row changed while it was imported")
        return new_name

    def _discard(self, file_id: str) -> None:
        """Best effort: removes an upload no row will point at."""
        assert self.client is not None
        try:
            self.client.delete_file(file_id)
        except Error:
            pass
