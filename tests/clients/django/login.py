"""Logs USERNAME in through django.contrib.auth (creating the user if needed) and prints
{"user_id": <pk>, "sessionid": <cookie value>} as JSON.

    DJANGO_DB=/tmp/x.sqlite3 REDIS_URL=redis://127.0.0.1:6379/0 python login.py alice [logout]
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

call_command("migrate", verbosity=0, interactive=False)
username = sys.argv[1]
user, _ = User.objects.get_or_create(username=username)
user.set_password("password")
user.save()
client = Client()
if not client.login(username=username, password="password"):
    sys.exit("login failed")
session_id = client.cookies["sessionid"].value
if len(sys.argv) > 2 and sys.argv[2] == "logout":
    client.logout()
print(json.dumps({"user_id": str(user.pk), "sessionid": session_id}))
