"""Prepares the project, then serves it on 127.0.0.1:PORT (the e2e test's Django app).

    DJANGO_DIR=... MEDIAGATE_ADMIN_URL=... MEDIAGATE_TOKEN=... python serve.py PORT

Prepares as a site adopting mediagate would: tables, users alice, bob and staff (is_staff),
their mediagate users, a Document for alice saved through MediagateStorage, and a django-tools
serve_media_app tree imported with `manage.py mediagate_import`. What the test needs to know
(user pks, the files' URLs) goes to $DJANGO_DIR/state.json before the server listens, so a
listening server means a prepared one.
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fwdsite.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402
from django.core.management import call_command, execute_from_command_line  # noqa: E402

from docs.models import Document, ToolsMedia  # noqa: E402
from mediagate.django.conf import get_client  # noqa: E402

# The e2e test expects exactly these bytes (tests/e2e/django_forward.rs).
DOCUMENT = b"alice's report \x00\xff\r\n end"
IMPORTED = b"alice's old django-tools file"
TOOLS_NAME = "w7tytv3lyupc/fm4kf9hp0c_vfx3onskrffw1/old notes.txt"

port = sys.argv[1]
root = Path(os.environ["DJANGO_DIR"])
# The docs app has no migrations: syncdb creates its tables.
call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
users = {}
for name in ("alice", "bob", "staff"):
    user = User.objects.create_user(name, password="password", is_staff=name == "staff")
    get_client().ensure_user(str(user.pk))
    users[name] = user

doc = Document(owner=users["alice"])
doc.file.save("report.bin", ContentFile(DOCUMENT))

tools = root / "tools"
(tools / TOOLS_NAME).parent.mkdir(parents=True)
(tools / TOOLS_NAME).write_bytes(IMPORTED)
old = ToolsMedia.objects.create(user=users["alice"], file=TOOLS_NAME)
call_command(
    "mediagate_import", "docs.ToolsMedia.file", "--from", str(tools), "--owner-field", "user",
    stdout=sys.stderr,
)
old.refresh_from_db()

state = {
    "users": {name: str(u.pk) for name, u in users.items()},
    "document_url": doc.file.url,
    "imported_url": old.file.url,
}
(root / "state.json").write_text(json.dumps(state))
execute_from_command_line(["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"])
