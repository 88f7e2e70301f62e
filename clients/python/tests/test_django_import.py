"""``manage.py mediagate_import`` on generated django-tools and django-private-storage trees:
dry run, import, resume after a crash, the report of what could not be mapped, and the old
tree left exactly as it was."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import mediagate

from ._server import Server
from .conftest import decide, served_bytes, unique

pytestmark = pytest.mark.usefixtures("django_project")


def make_user() -> Any:
    from django.contrib.auth.models import User

    return User.objects.create_user(unique("imp"), password="pw")


def write(root: Path, relative: str, data: bytes) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def snapshot(root: Path) -> Dict[str, Tuple[str, int, int]]:
    """Every entry under ``root``: its digest (files), mode and mtime."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            entries[str(path.relative_to(root))] = (digest, st.st_mode, st.st_mtime_ns)
    return entries


def run(*args: str) -> str:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("mediagate_import", *args, stdout=out)
    return out.getvalue()


def staff_session(client: mediagate.Client) -> str:
    reader = unique("staff")
    client.ensure_user(reader)
    return client.create_session(reader, roles=["staff"])["session_id"]


@pytest.fixture
def tools_tree(tmp_path: Path) -> Tuple[Path, Dict[str, Any]]:
    """A django-tools serve_media_app tree ``{user_token}/{file_token}/{name}`` and its rows:
    two importable, three that cannot be mapped, one with no file."""
    from gallery.models import ToolsMedia  # type: ignore[import-not-found]

    ToolsMedia.objects.all().delete()
    root = tmp_path / "media"
    alice, bob = make_user(), make_user()
    names = {
        "alice": "w7tytv3lyupc/fm4kf9hp0c_vfx3onskrffw1/holiday photo.jpg",
        "bob": "k2j3h4g5f6d7/ab12cd34ef56gh78ij90kl12/report.pdf",
        "nobody": "q9q9q9q9q9q9/zz11zz11zz11zz11zz11zz11/orphan.txt",
        "missing": "w7tytv3lyupc/gone00000000000000000000/missing.txt",
        "outside": "../outside.txt",
    }
    write(root, names["alice"], b"\xff\xd8 alice's photo")
    write(root, names["bob"], b"%PDF bob's report")
    write(root, names["nobody"], b"whose?")
    write(tmp_path, "outside.txt", b"not under the root")
    rows = {
        "alice": ToolsMedia.objects.create(user=alice, file=names["alice"]),
        "bob": ToolsMedia.objects.create(user=bob, file=names["bob"]),
        "nobody": ToolsMedia.objects.create(user=None, file=names["nobody"]),
        "missing": ToolsMedia.objects.create(user=alice, file=names["missing"]),
        "outside": ToolsMedia.objects.create(user=alice, file=names["outside"]),
        "empty": ToolsMedia.objects.create(user=alice, file=""),
    }
    return root, {"rows": rows, "names": names, "alice": alice, "bob": bob}


def names_now(rows: Dict[str, Any]) -> Dict[str, str]:
    for row in rows.values():
        row.refresh_from_db()
    return {key: row.file.name for key, row in rows.items()}


def test_dry_run_changes_nothing(tools_tree: Tuple[Path, Dict[str, Any]], admin_calls: List[str]) -> None:
    root, tree = tools_tree
    before, names_before = snapshot(root), names_now(tree["rows"])
    out = run("gallery.ToolsMedia.file", "--from", str(root), "--dry-run")
    assert "would import 2, already in mediagate 0, could not map 3" in out
    assert "would import pk=" in out
    assert admin_calls == []
    assert names_now(tree["rows"]) == names_before
    assert snapshot(root) == before


def test_import_a_django_tools_tree(
    server: Server, client: mediagate.Client, tools_tree: Tuple[Path, Dict[str, Any]]
) -> None:
    root, tree = tools_tree
    before = snapshot(root)
    out = run("gallery.ToolsMedia.file", "--from", str(root))
    assert "imported 2, already in mediagate 0, could not map 3" in out
    rows, names = tree["rows"], tree["names"]
    assert f"pk={rows['nobody'].pk} {names['nobody']!r}: no owner" in out
    assert f"pk={rows['missing'].pk} {names['missing']!r}: missing file" in out
    assert f"pk={rows['outside'].pk} {names['outside']!r}: outside" in out
    now = names_now(rows)
    for key in ("nobody", "missing", "outside"):
        assert now[key] == names[key], "unmapped rows keep their names"
    assert now["empty"] == ""
    staff = staff_session(client)
    for key, data in (("alice", b"\xff\xd8 alice's photo"), ("bob", b"%PDF bob's report")):
        info = client.file(now[key][:32])
        assert now[key] == f"{info['file_id']}/{info['filename']}"
        assert info["filename"] == Path(names[key]).name
        assert info["user_id"] == str(tree[key].pk)
        assert served_bytes(server, info["url"], staff) == data
        assert rows[key].file.url == info["url"]
    # Readable by its owner only.
    alice_url = client.file(now["alice"][:32])["url"]
    alices = client.create_session(str(tree["alice"].pk))["session_id"]
    bobs = client.create_session(str(tree["bob"].pk))["session_id"]
    assert decide(server, alice_url, alices).status_code == 200
    assert decide(server, alice_url, bobs).status_code == 403
    assert decide(server, alice_url).status_code == 401
    assert snapshot(root) == before, "the old tree is untouched"
    again = run("gallery.ToolsMedia.file", "--from", str(root))
    assert "imported 0, already in mediagate 2, could not map 3" in again
    assert names_now(rows) == now


def test_resume_after_a_crash(
    monkeypatch: pytest.MonkeyPatch, tools_tree: Tuple[Path, Dict[str, Any]]
) -> None:
    from django.core.management.base import CommandError

    root, tree = tools_tree
    real_upload = mediagate.Client.upload
    calls = []

    def failing_upload(self: mediagate.Client, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) > 1:
            raise mediagate.UnavailableError("simulated: mediagate went away")
        return real_upload(self, *args, **kwargs)

    monkeypatch.setattr(mediagate.Client, "upload", failing_upload)
    with pytest.raises(CommandError, match="run the same command again"):
        run("gallery.ToolsMedia.file", "--from", str(root))
    monkeypatch.setattr(mediagate.Client, "upload", real_upload)
    first = names_now(tree["rows"])
    assert first["alice"][:32] != tree["names"]["alice"][:32]  # imported before the crash
    assert first["bob"] == tree["names"]["bob"]  # not yet
    out = run("gallery.ToolsMedia.file", "--from", str(root))
    assert "imported 1, already in mediagate 1, could not map 3" in out
    after = names_now(tree["rows"])
    assert after["alice"] == first["alice"]
    assert after["bob"] != tree["names"]["bob"]


def test_import_a_private_storage_root(
    server: Server, client: mediagate.Client, tmp_path: Path
) -> None:
    from gallery.models import PrivateDoc

    root = tmp_path / "private-media"
    owner = make_user()
    lookalike = f"{uuid.uuid4().hex}/scan.png"  # an old name that looks like a stable one
    data = {
        "invoices/2024/03/invoice 7.pdf": b"%PDF invoice",
        "top.txt": b"top level",
        lookalike: b"\x89PNG scan",
    }
    rows = {}
    for name, content in data.items():
        write(root, name, content)
        rows[name] = PrivateDoc.objects.create(owner=owner, file=name)
    before = snapshot(root)
    out = run("gallery.PrivateDoc.file", "--from", str(root))  # owner field from owned_by
    assert "imported 3, already in mediagate 0, could not map 0" in out
    staff = staff_session(client)
    for name, row in rows.items():
        row.refresh_from_db()
        assert row.file.name != name
        info = client.file(row.file.name[:32])
        assert info["user_id"] == str(owner.pk)
        assert info["filename"] == Path(name).name
        assert served_bytes(server, info["url"], staff) == data[name]
    assert snapshot(root) == before


def test_refusals(tmp_path: Path) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="MediagateStorage"):
        run("gallery.NotSwitched.file", "--from", str(tmp_path))
    with pytest.raises(CommandError, match="app_label.Model.field"):
        run("gallery.ToolsMedia", "--from", str(tmp_path))
    with pytest.raises(CommandError, match="no field 'uploader'"):
        run("gallery.ToolsMedia.file", "--from", str(tmp_path), "--owner-field", "uploader")
    with pytest.raises(CommandError, match="not a directory"):
        run("gallery.ToolsMedia.file", "--from", str(tmp_path / "nope"))


def test_the_command_line(django_project: Path, tools_tree: Tuple[Path, Dict[str, Any]]) -> None:
    root, _ = tools_tree
    result = subprocess.run(
        [sys.executable, "manage.py", "mediagate_import", "gallery.ToolsMedia.file",
         "--from", str(root), "--owner-field", "user", "--dry-run"],
        cwd=django_project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "would import 2, already in mediagate 0, could not map 3" in result.stdout
