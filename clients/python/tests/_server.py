"""A real mediagate process for the tests, started as the Rust tests start theirs.

The binary is copied once per session (the other engineer rebuilds ``target/debug/mediagate``
while these tests run), listens on free loopback ports, keeps its store and media in a temp
dir, and is killed at the end. Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import httpx

#: The debug build of the repository this package sits in (``cargo build``).
DEFAULT_BIN = str(Path(__file__).resolve().parents[3] / "target" / "debug" / "mediagate")

#: Extra settings every test server gets (the client tests rely on them).
SETTINGS: Dict[str, str] = {
    "MEDIAGATE__POLICY__READ_ALL_ROLES": "staff",
    "MEDIAGATE__UPLOAD__MAX_BYTES": str(48 * 1024 * 1024),
    "MEDIAGATE__STORE__TIMEOUT_MS": "900",
    "MEDIAGATE__AUDIT__FLUSH_MS": "1",
    "MEDIAGATE__SERVER__WORKERS": "2",
}


def binary_path() -> Path:
    return Path(os.environ.get("MEDIAGATE_BIN", DEFAULT_BIN))


def copy_binary(into: Path) -> Path:
    """A private copy of the binary, so a rebuild during the session changes nothing."""
    source = binary_path()
    if not source.is_file():
        raise FileNotFoundError(
            f"no mediagate binary at {source} (MEDIAGATE_BIN): build it with: cargo build"
        )
    target = into / "mediagate"
    shutil.copy2(source, target)
    target.chmod(0o755)
    return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running mediagate: where its listeners are, and its token and directories."""

    binary: Path
    workdir: Path
    admin_port: int
    auth_port: int
    token: str
    process: Optional["subprocess.Popen[bytes]"] = None

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.auth_port}"

    @property
    def storage_root(self) -> Path:
        return self.workdir / "media"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mediagate.log"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self) -> None:
        self.storage_root.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE")}
        env.pop("RUST_LOG", None)
        env.update(SETTINGS)
        env.update(
            {
                "MEDIAGATE__SERVER__AUTH_LISTEN": f"127.0.0.1:{self.auth_port}",
                "MEDIAGATE__SERVER__ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
                "MEDIAGATE__ADMIN__TOKEN": self.token,
                "MEDIAGATE__STORE__URL": f"embedded:{self.workdir / 'store.db'}",
                "MEDIAGATE__STORAGE__ROOT": str(self.storage_root),
                "MEDIAGATE__LINKS__SECRET": secrets.token_hex(24),
            }
        )
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "serve"],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, seconds: float = 30.0) -> bool:
        """True once /healthz and /readyz answer 200 and the admin API takes our token (so
        the answer is ours, not another process's on a port we raced for); False if the
        process died."""
        deadline = time.monotonic() + seconds
        headers = {"Authorization": f"Bearer {self.token}"}
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            try:
                ok = all(
                    httpx.get(self.admin_url + p, timeout=1.0).status_code == 200
                    for p in ("/healthz", "/readyz")
                ) and (
                    httpx.get(self.admin_url + "/v1/events?limit=1", headers=headers, timeout=1.0)
                    .status_code
                    == 200
                )
                if ok:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"mediagate not ready within {seconds} s; log:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def start_server(binary: Path, workdir: Path, attempts: int = 3) -> Server:
    """Starts mediagate on fresh ports, trying again if a port was taken meanwhile."""
    last_log = ""
    for attempt in range(attempts):
        run_dir = workdir / f"run{attempt}"
        run_dir.mkdir()
        server = Server(
            binary=binary,
            workdir=run_dir,
            admin_port=free_port(),
            auth_port=free_port(),
            token="test-admin-" + secrets.token_hex(16),
        )
        server.start()
        if server.wait_ready():
            return server
        last_log = server.log_tail()
        server.stop()
    raise RuntimeError(f"mediagate did not start after {attempts} attempts; log:\n{last_log}")
