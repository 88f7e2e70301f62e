"""mediagate's benchmark: plain nginx, the no-op auth_request stub, the HTTP floor (actix-web
answering 200 in a process of its own) and the store floor (the same, plus mediagate's one Redis
lookup per request) as auth_request upstreams, mediagate (every request decided against Redis),
a second mediagate in cached mode, and a third in default mode behind an nginx with its decision
cache on (1 s), with the same files, nginx settings and wrk parameters, in interleaved rounds
(each round in the reverse order of the one before). Reports requests/s, p50/p99, non-2xx,
ratios to plain and to the stub (the median of each round's own ratio, and their range), and CPU
time per response of nginx, mediagate and redis-server (from /proc). Then the realistic workload
(`realistic.py`: 1,000 files of 50 users in rotation; plain, both stubs including one on a unix
socket, mediagate over TCP, over a unix socket, and with Redis on a unix socket too, cached
mode). Also: the auth listener and
both floors directly (no nginx), and a mediagate whose bytes are in a bucket (s3s-fs); the
scale measurement (a million files and 100k users, and a thousand files and 100 users, each
written into a Redis of its own in mediagate's layout: memory per file, and decisions on the two
stores in alternating pairs of runs); RSS; time to ready on a new
embedded store, and on one filled with as many files through the store's API. It reports; it
never fails on figures, only on wrong answers.

    python3 bench/bench.py [--seconds 5] [--rounds 3]   (make bench)
"""
import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import realistic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "mediagate")
SCALE_BIN = os.path.join(ROOT, "target", "release", "examples", "embedded_scale")
FLOOR_BIN = os.path.join(ROOT, "target", "release", "examples", "http_floor")
STORE_FLOOR_BIN = os.path.join(ROOT, "target", "release", "examples", "store_floor")
S3_BIN = os.path.join(ROOT, "target", "tools", "bin", "s3s-fs")
S3_KEYS = ("AKIDMEDIAGATEBENCH", "mediagate-bench-secret-0123456789abcdef")
TOKEN = "bench-admin-token-0123456789"
TICK = os.sysconf("SC_CLK_TCK")
# The scale measurement compares a store of this many files with the large one, in at least
# this many pairs of runs.
SCALE_BASE_FILES = 1_000
SCALE_PAIRS = 5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(procs, unix_socket=None):
    """A redis-server of its own on a free port (and on `unix_socket` if given), keeping nothing
    on disk; its port."""
    port = free_port()
    also = ["--unixsocket", unix_socket, "--unixsocketperm", "700"] if unix_socket else []
    procs.append(subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no"] + also, stdout=subprocess.DEVNULL))
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return port
        except OSError:
            time.sleep(0.05)
    sys.exit(f"redis-server on {port} did not start")


def start_mediagate(env, work, name, procs, **settings):
    """`mediagate serve` with `env` and `settings` (MEDIAGATE__… variables) on two free ports,
    once ready; its process, auth port and admin port."""
    auth, adm = free_port(), free_port()
    env = dict(env, MEDIAGATE__SERVER__AUTH_LISTEN=f"127.0.0.1:{auth}",
               MEDIAGATE__SERVER__ADMIN_LISTEN=f"127.0.0.1:{adm}")
    env.update(settings)
    p = subprocess.Popen([BIN, "serve"], env=env, cwd=work, stderr=open(os.path.join(work, f"{name}.log"), "w"))
    procs.append(p)
    wait_for(f"http://127.0.0.1:{adm}/readyz")
    return p, auth, adm


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(url, patience=20.0):
    deadline = time.time() + patience
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.05)
    sys.exit(f"{url} did not come up")


def admin(port, method, path, body=b"", ctype="application/json"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body or None, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    req.add_header("Content-Type", ctype)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def fetch(port, path, cookie=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if cookie:
        req.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wrk(url, conns, seconds, headers, script=None):
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", url] + (["-s", script] if script else [])
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    return {"rps": rps, "total": total, "non2xx": int(non2xx.group(1)) if non2xx else 0, "p50": pct(50), "p99": pct(99)}


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True).stdout


def used_memory(port):
    return int(re.search(r"used_memory:(\d+)", redis_cli(port, "INFO", "memory")).group(1))


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def redis_get(port, key):
    """GET of a binary key (redis-cli takes its arguments as text); the value's bytes or None."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(resp("GET", key))
        f = s.makefile("rb")
        head = f.readline()
        n = int(head[1:])
        return None if n < 0 else f.read(n)


def varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def text(s):
    b = s.encode()
    return varint(len(b)) + b


def record(fid, owner, name, t):
    """A file record in layout 3 (src/store/redis/record.rs): a byte of layout and flags, then
    postcard: id, size, created_at (zigzag), owner, filename, content type, no grants."""
    created = t["created_at"]
    return (bytes([t["flags"]]) + fid + varint(t["size"]) + varint((created << 1) ^ (created >> 63))
            + text(owner) + text(name) + text(t["content_type"]) + varint(0))


def template_of(port, adm, uploaded):
    """The fields the scale files copy from a file mediagate wrote, checked by encoding that
    file's record here and comparing it with the bytes mediagate stored."""
    meta = admin(adm, "GET", f"/v1/files/{uploaded['file_id']}")
    t = {"size": meta["size"], "content_type": meta["content_type"],
         "created_at": int(datetime.datetime.fromisoformat(meta["created_at"].replace("Z", "+00:00")).timestamp()),
         "flags": 0x30 | ["private", "authenticated", "public"].index(meta["visibility"])
                  | (4 if meta["disposition"] == "attachment" else 0)}
    stored = redis_get(port, b"mediagate:ft:" + bytes.fromhex(uploaded["file_token"]))
    mine = record(bytes.fromhex(meta["file_id"]), meta["user_id"], meta["filename"], t)
    assert stored == mine, f"the bench writes records unlike mediagate's: {stored!r} against {mine!r}"
    return t


def populate(port, template, files, users):
    """Writes `users` users and `files` files straight into Redis, in mediagate's own layout
    (src/store/keys.rs), each file record shaped like `template` (see template_of).
    Returns one (user id, user token, file token, filename) to decide on."""
    proc = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    pick = None
    batch = []
    for u in range(users):
        uid, utok = f"scale{u}", os.urandom(16).hex()
        batch.append(resp("SET", f"mediagate:user:{uid}", json.dumps({"u": uid, "t": utok, "c": 1700000000}, separators=(",", ":"))))
        batch.append(resp("SET", f"mediagate:utok:{utok}", uid))
        for _ in range(files // users):
            fid, ftok = os.urandom(16), os.urandom(16)
            name = f"{fid.hex()[:8]}.bin"
            batch.append(resp("SET", b"mediagate:ft:" + ftok, record(fid, uid, name, template)))
            batch.append(resp("HSET", f"mediagate:ids:{fid.hex()[:4]}", fid, ftok))
            batch.append(resp("HSET", f"mediagate:files:{uid}", fid, ""))
            if pick is None and u == users // 2:
                pick = (uid, utok, ftok.hex(), name)
        if len(batch) > 20000:
            proc.stdin.write(b"".join(batch))
            batch = []
    proc.stdin.write(b"".join(batch))
    proc.stdin.close()
    proc.wait()
    return pick


def instructions(cmd, env, work, port, headers, ready_url, name, n=2000):
    """User-space instructions per request of the server `cmd` (listening on `port`), counted by
    callgrind over `n` sequential keep-alive requests after a warm-up. Unlike time, the count
    moves by under 1% between runs of the same binary and inputs, however loaded the machine
    is. None without valgrind."""
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        return None
    out = os.path.join(work, f"callgrind.{name}")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + cmd,
                         env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(ready_url, patience=120)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def run(count):
            for _ in range(count):
                c.request("GET", "/auth", headers=headers)
                r = c.getresponse()
                r.read()
                assert r.status == 200, f"{name}: {r.status}"
        run(200)
        subprocess.run(["callgrind_control", "-z", str(p.pid)], check=True, capture_output=True)
        run(n)
        subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True, capture_output=True)
        with open(out + ".1") as f:
            total = int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M).group(1))
        return total / n
    finally:
        p.terminate()
        p.wait()


def ready_ms(env, work, db):
    """Milliseconds from exec to the first 200 from /readyz, on the embedded store `db`."""
    adm = free_port()
    env = dict(env, MEDIAGATE__STORE__URL=f"embedded:{db}", MEDIAGATE__SERVER__AUTH_LISTEN=f"127.0.0.1:{free_port()}",
               MEDIAGATE__SERVER__ADMIN_LISTEN=f"127.0.0.1:{adm}")
    t0 = time.monotonic()
    p = subprocess.Popen([BIN, "serve", "--migrate"], env=env, cwd=work, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{adm}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return (time.monotonic() - t0) * 1000
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.001)
            if time.monotonic() - t0 > 30:
                return float("nan")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)


def drop_page_cache():
    """Empties the kernel's page cache (root only), so that the next open reads from disk."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def embedded_scale(env, work, files, users):
    """Fills an embedded store through the store's API (on a tmpfs, to spare the fsyncs),
    copies it to disk, and times `mediagate serve` until ready on it: cold, then warm."""
    shm = tempfile.mkdtemp(prefix="mediagate-scale-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    db = os.path.join(work, "scale.db")
    try:
        t0 = time.monotonic()
        subprocess.run([SCALE_BIN, os.path.join(shm, "scale.db"), str(files), str(users)], check=True,
                       stderr=subprocess.DEVNULL)
        filled = time.monotonic() - t0
        shutil.copy(os.path.join(shm, "scale.db"), db)
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    cold = drop_page_cache()
    first = ready_ms(env, work, db)
    warm = sorted(ready_ms(env, work, db) for _ in range(5))[2]
    return filled, os.path.getsize(db), first, cold, warm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--direct-only", action="store_true", help="only the auth listener, without nginx")
    ap.add_argument("--embedded", action="store_true", help="decide on the embedded store instead of Redis")
    ap.add_argument("--scale-files", type=int, default=1_000_000, help="files for the scale measurement (0: skip)")
    ap.add_argument("--scale-users", type=int, default=100_000)
    ap.add_argument("--realistic-only", action="store_true", help="only the realistic workload's rows")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk (make bench does)")
    work = tempfile.mkdtemp(prefix="mediagate-bench-")
    # nginx's workers run as an unprivileged user when the master is root: let them traverse.
    os.chmod(work, 0o755)
    procs = []
    try:
        # Redis, own port (and a unix socket), nothing on disk.
        rsock = os.path.join(work, "redis.sock")
        rport = start_redis(procs, rsock)
        redis = procs[-1]
        http, stub = free_port(), free_port()
        media = os.path.join(work, "media")
        os.makedirs(media)
        store_url = f"embedded:{work}/store.db" if args.embedded else f"redis://127.0.0.1:{rport}/"
        env = dict(os.environ, MEDIAGATE__ADMIN__TOKEN=TOKEN, MEDIAGATE__STORE__URL=store_url,
                   MEDIAGATE__STORAGE__ROOT=media, MEDIAGATE__SERVER__WORKERS="2", MEDIAGATE__LOG__LEVEL="warn")
        app, auth, adm = start_mediagate(env, work, "app", procs)
        started_rss = rss_kib(app.pid)
        # A second instance in cached mode, on the same Redis (default copy age, 100 ms).
        cached = None
        if not args.embedded:
            http2 = free_port()
            cached, auth2, _ = start_mediagate(env, work, "app2", procs, MEDIAGATE__STORE__CACHE="true")
        # A third, in default mode, behind an nginx that keeps its allows for a second (an
        # embedded store admits one process).
        ncache, ncache_env, http3 = None, dict(env, MEDIAGATE__NGINX__DECISION_CACHE_SECS="1"), free_port()
        if not args.embedded:
            ncache, auth3, _ = start_mediagate(ncache_env, work, "app3", procs)
        # A fourth, in default mode, on a unix socket (the chart's default hop).
        usock, app4, http4 = os.path.join(work, "auth4.sock"), None, free_port()
        if not args.embedded:
            app4, _, _ = start_mediagate(env, work, "app4", procs, MEDIAGATE__SERVER__AUTH_LISTEN=f"unix:{usock}")
        # A sixth, the same with Redis on a unix socket too: both hops off TCP.
        usock6, app6, http6 = os.path.join(work, "auth6.sock"), None, free_port()
        if not args.embedded:
            app6, _, _ = start_mediagate(env, work, "app6", procs, MEDIAGATE__SERVER__AUTH_LISTEN=f"unix:{usock6}",
                                         MEDIAGATE__STORE__URL=f"redis+unix://{rsock}")

        # The same files for every setup.
        plain = os.path.join(work, "plain")
        os.makedirs(plain)
        files = {"4k": os.urandom(4096), "1m": os.urandom(1 << 20)}
        owner_token = admin(adm, "PUT", "/v1/users/owner")["user_token"]
        admin(adm, "PUT", "/v1/users/stranger")
        urls, uploaded = {}, {}
        for size, data in files.items():
            with open(os.path.join(plain, f"{size}.bin"), "wb") as f:
                f.write(data)
            uploaded[size] = admin(adm, "POST", f"/v1/users/owner/files?filename={size}.bin", data, "application/octet-stream")
            urls[size] = uploaded[size]["url"]
        owner = "mediagate_session=" + admin(adm, "POST", "/v1/sessions", json.dumps({"user_id": "owner"}).encode())["session_id"]
        stranger = "mediagate_session=" + admin(adm, "POST", "/v1/sessions", json.dumps({"user_id": "stranger"}).encode())["session_id"]
        rotation = realistic.populate(adm, admin, plain, files["4k"])
        bucket = None if args.embedded or args.realistic_only else start_bucket(env, work, procs, files["4k"])

        # One nginx: mediagate's own config, plus a plain location and the no-op stub.
        def render(listen, auth_port, env=env, upstream=None):
            conf = subprocess.run([BIN, "nginx-config", "--listen", f"127.0.0.1:{listen}", "--storage-root", media,
                                   "--auth-upstream", upstream or f"127.0.0.1:{auth_port}", "--error-log", "error.log",
                                   "--access-log", "off"],
                                  env=env, cwd=work, capture_output=True, text=True, check=True).stdout
            return conf.replace("worker_processes auto;", "worker_processes 2;")

        def start_nginx(conf, name):
            ngdir = os.path.join(work, name)
            os.makedirs(ngdir)
            with open(os.path.join(ngdir, "nginx.conf"), "w") as f:
                f.write(conf)
            p = subprocess.Popen(["nginx", "-p", ngdir, "-c", os.path.join(ngdir, "nginx.conf"), "-e", os.path.join(ngdir, "startup.log")])
            procs.append(p)
            return p, ngdir

        # The floor: actix-web answering 200 and nothing else, in a process of its own like
        # mediagate. Through nginx it shows what a decision costs before any work; directly,
        # what the web framework costs.
        floor_port = free_port()
        floor = subprocess.Popen([FLOOR_BIN, str(floor_port)], stderr=subprocess.DEVNULL)
        procs.append(floor)
        wait_for(f"http://127.0.0.1:{floor_port}/auth")
        # The store floor: the same, plus the one Redis read of the owner's decision, made by
        # mediagate's own store code. Its distance from the HTTP floor is what asking Redis on
        # every request costs; mediagate's distance from it is the decision itself.
        # It opens the store from the same settings as mediagate (`env`).
        def store_floor_cmd(port):
            return [STORE_FLOOR_BIN, str(port), owner_token, uploaded["4k"]["file_token"], owner.split("=", 1)[1]]

        store_floor = None
        if not args.embedded:
            store_floor_port = free_port()
            store_floor = subprocess.Popen(store_floor_cmd(store_floor_port), env=env, cwd=work,
                                           stderr=open(os.path.join(work, "store_floor.log"), "w"))
            procs.append(store_floor)
            wait_for(f"http://127.0.0.1:{store_floor_port}/auth")

        conf = render(http, auth)
        extra_http = f"""
    upstream stub_upstream {{ server 127.0.0.1:{stub}; keepalive 32; }}
    upstream floor_upstream {{ server 127.0.0.1:{floor_port}; keepalive 32; }}
    server {{ listen 127.0.0.1:{stub}; access_log off; location / {{ return 204; }} }}
    upstream ustub_upstream {{ server unix:{work}/stub.sock; keepalive 32; }}
    server {{ listen unix:{work}/stub.sock; access_log off; location / {{ return 204; }} }}
"""
        if store_floor:
            extra_http += f"""    upstream store_floor_upstream {{ server 127.0.0.1:{store_floor_port}; keepalive 32; }}
"""
        # mediagate's storage location opens files with these settings; the plain, stub and
        # floor locations get the same, so that every row opens its files the same way.
        files_conf = " ".join(re.findall(r"^\s*((?:disable_symlinks|open_file_cache\w*) [^;]*;)", conf, re.M))
        assert "open_file_cache" in files_conf, files_conf

        def guarded(name, upstream):
            """/NAME/ serves the plain files after an auth_request to `upstream` (a URL)."""
            return f"""
        location ^~ /{name}/ {{
            auth_request /_{name}_auth;
            alias {plain}/;
            {files_conf}
        }}
        location = /_{name}_auth {{
            internal;
            proxy_pass {upstream};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
"""

        extra_server = (f"""
        location ^~ /plain/ {{ alias {plain}/; {files_conf} }}
""" + guarded("stub", "http://stub_upstream") + guarded("ustub", "http://ustub_upstream")
                        + guarded("floor", "http://floor_upstream/auth")
                        + (guarded("store_floor", "http://store_floor_upstream/auth") if store_floor else ""))
        conf = conf.replace("http {", "http {" + extra_http, 1).replace("server_name _;", "server_name _;" + extra_server, 1)
        # Each location above keeps its own `open_file_cache` (1,000 descriptors per worker),
        # six in this server where mediagate's config has one: without more room, the
        # realistic workload's rotation ran nginx out of descriptors (EMFILE, answered 500).
        assert "worker_rlimit_nofile 4096;" in conf, "the rendered config's descriptor limit moved"
        conf = conf.replace("worker_rlimit_nofile 4096;", "worker_rlimit_nofile 16384;", 1)
        nginx, ngdir = start_nginx(conf, "nginx")
        # The cached instance gets its own nginx, rendered the same way.
        if cached:
            nginx2, _ = start_nginx(render(http2, auth2), "nginx2")
        if ncache:
            nginx3, _ = start_nginx(render(http3, auth3, ncache_env), "nginx3")
        if app4:
            nginx4, _ = start_nginx(render(http4, 0, upstream=f"unix:{usock}"), "nginx4")
        if app6:
            nginx6, _ = start_nginx(render(http6, 0, upstream=f"unix:{usock6}"), "nginx6")
        time.sleep(0.5)
        nginx_pids = [nginx.pid] + children(nginx.pid)
        nginx2_pids = [nginx2.pid] + children(nginx2.pid) if cached else []
        nginx3_pids = [nginx3.pid] + children(nginx3.pid) if ncache else []
        nginx4_pids = [nginx4.pid] + children(nginx4.pid) if app4 else []
        nginx6_pids = [nginx6.pid] + children(nginx6.pid) if app6 else []

        # Correctness before figures.
        for size, data in files.items():
            got = fetch(http, urls[size], owner)
            assert got == (200, data), f"owner must get the exact bytes: {got[0]}, {len(got[1])} bytes; nginx: {open(os.path.join(ngdir, 'error.log')).read()[-2000:] if os.path.exists(os.path.join(ngdir, 'error.log')) else ''}"
            assert fetch(http, urls[size], stranger)[0] == 403, "a stranger must be refused"
            assert fetch(http, urls[size])[0] == 401, "anonymous must be refused"
            assert fetch(http, f"/plain/{size}.bin") == (200, data)
            assert fetch(http, f"/stub/{size}.bin") == (200, data)
            assert fetch(http, f"/floor/{size}.bin") == (200, data)
            assert fetch(http, f"/ustub/{size}.bin") == (200, data)
            if app4:
                assert fetch(http4, urls[size], owner) == (200, data), "unix socket: owner must get the exact bytes"
                assert fetch(http4, urls[size], stranger)[0] == 403, "unix socket: a stranger must be refused"
            if app6:
                assert fetch(http6, urls[size], owner) == (200, data), "both sockets: owner must get the exact bytes"
                assert fetch(http6, urls[size], stranger)[0] == 403, "both sockets: a stranger must be refused"
            if store_floor:
                assert fetch(http, f"/store_floor/{size}.bin") == (200, data)
            if cached:
                assert fetch(http2, urls[size], owner) == (200, data), "cached: owner must get the exact bytes"
                assert fetch(http2, urls[size], stranger)[0] == 403, "cached: a stranger must be refused"
                assert fetch(http2, urls[size])[0] == 401, "cached: anonymous must be refused"
            # Twice each, so that the second answers come from nginx's copy where there is one.
            for _ in range(2 if ncache else 0):
                assert fetch(http3, urls[size], owner) == (200, data), "decision cache: owner must get the exact bytes"
                assert fetch(http3, urls[size], stranger)[0] == 403, "decision cache: a stranger must be refused"
                assert fetch(http3, urls[size])[0] == 401, "decision cache: anonymous must be refused"

        # name: (port, path, headers, nginx pids, mediagate pid)
        setups = {
            "plain nginx static": (http, lambda size: f"/plain/{size}.bin", [], nginx_pids, app.pid),
            "auth_request to a no-op 204 stub": (http, lambda size: f"/stub/{size}.bin", [], nginx_pids, app.pid),
            "auth_request to the HTTP floor (actix-web, 200, no work)": (http, lambda size: f"/floor/{size}.bin", [], nginx_pids, floor.pid),
        }
        if store_floor:
            setups["auth_request to the store floor (the HTTP floor + mediagate's Redis lookup, no decision)"] = (http, lambda size: f"/store_floor/{size}.bin", [], nginx_pids, store_floor.pid)
        setups |= {
            f"mediagate ({'embedded' if args.embedded else 'Redis'}, every request decided)":
                (http, lambda size: urls[size], [f"Cookie: {owner}"], nginx_pids, app.pid),
        }
        if cached:
            setups["mediagate (Redis, cached mode)"] = (http2, lambda size: urls[size], [f"Cookie: {owner}"], nginx2_pids, cached.pid)
        if ncache:
            setups["mediagate (Redis, nginx decision cache 1 s)"] = (
                http3, lambda size: urls[size], [f"Cookie: {owner}"], nginx3_pids, ncache.pid)
        results = {}
        for rnd in range(0 if args.direct_only or args.realistic_only else args.rounds):
            for size in files:
                for conns in (8, 64):
                    # Every other round in the reverse order, so that no setup always runs
                    # right after the same neighbour.
                    order = list(setups) if rnd % 2 == 0 else list(reversed(setups))
                    for name in order:
                        port, path, headers, ng_pids, app_pid = setups[name]
                        pids = {"nginx": ng_pids, "mediagate": [app_pid], "redis": [redis.pid]}
                        t0 = {k: cpu_ticks(v) for k, v in pids.items()}
                        r = wrk(f"http://127.0.0.1:{port}{path(size)}", conns, args.seconds, headers)
                        for k, v in t0.items():
                            r[f"cpu_{k}"] = (cpu_ticks(pids[k]) - v) / TICK * 1e6 / max(r["total"], 1)
                        results.setdefault((name, size, conns), []).append(r)
            print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr)

        rot_results, rot_setups = realistic_rounds(args, work, files["4k"], rotation, http, http2 if cached else None,
                                                   {"nginx4": http4 if app4 else None, "nginx6": http6 if app6 else None},
                                                   {"nginx": nginx_pids, "nginx2": nginx2_pids, "nginx4": nginx4_pids,
                                                    "nginx6": nginx6_pids},
                                                   {"app": app.pid, "cached": cached.pid if cached else None,
                                                    "app4": app4.pid if app4 else None, "app6": app6.pid if app6 else None},
                                                   redis.pid)
        if args.realistic_only:
            print_realistic(rot_results, rot_setups, median_of, paired_ratio)
            return refused(work, rot_results)

        # The auth listener alone: nginx's subrequest as wrk sends it.
        def subrequest(uri, cookie):
            """The headers of nginx's auth subrequest for `uri`, from a browser with `cookie`."""
            return {"X-Original-URI": uri, "X-Original-Method": "GET", "Cookie": cookie,
                    "X-Original-Remote-Addr": "127.0.0.1"}

        def direct_once(port, pid, uri, cookie, redis_pid=redis.pid):
            t0 = (cpu_ticks([pid]), cpu_ticks([redis_pid]))
            r = wrk(f"http://127.0.0.1:{port}/auth", 64, args.seconds,
                    [f"{k}: {v}" for k, v in subrequest(uri, cookie).items()])
            r["cpu_mediagate"] = (cpu_ticks([pid]) - t0[0]) / TICK * 1e6 / max(r["total"], 1)
            r["cpu_redis"] = (cpu_ticks([redis_pid]) - t0[1]) / TICK * 1e6 / max(r["total"], 1)
            return r

        def direct_run(port, pid, uri, cookie):
            return [direct_once(port, pid, uri, cookie) for _ in range(args.rounds)]

        direct = {"default mode": direct_run(auth, app.pid, urls["4k"], owner)}
        if cached:
            direct["cached mode"] = direct_run(auth2, cached.pid, urls["4k"], owner)
        if bucket:
            direct["default mode, bytes in a bucket"] = direct_run(bucket["auth"], bucket["app"].pid, bucket["url"],
                                                                   bucket["cookie"])
        floor_rs = direct_run(floor_port, floor.pid, urls["4k"], owner)
        store_floor_rs = direct_run(store_floor_port, store_floor.pid, urls["4k"], owner) if store_floor else None

        # Instructions per decision: a figure the machine's noise does not move. Each count runs
        # a server of its own; an embedded store admits one process, so it is counted on Redis only.
        counted = {}
        hdrs = subrequest(urls["4k"], owner)
        for mode, flag in [] if args.embedded else [("default mode", "false"), ("cached mode", "true")]:
            a, m = free_port(), free_port()
            env_cg = dict(env, MEDIAGATE__SERVER__AUTH_LISTEN=f"127.0.0.1:{a}", MEDIAGATE__SERVER__ADMIN_LISTEN=f"127.0.0.1:{m}",
                          MEDIAGATE__SERVER__WORKERS="1", MEDIAGATE__STORE__CACHE=flag)
            counted[mode] = instructions([BIN, "serve"], env_cg, work, a, hdrs, f"http://127.0.0.1:{m}/readyz", mode.split()[0])
        if bucket:
            a, m = free_port(), free_port()
            env_cg = dict(bucket["env"], MEDIAGATE__SERVER__AUTH_LISTEN=f"127.0.0.1:{a}",
                          MEDIAGATE__SERVER__ADMIN_LISTEN=f"127.0.0.1:{m}", MEDIAGATE__SERVER__WORKERS="1")
            counted["default mode, bytes in a bucket"] = instructions(
                [BIN, "serve"], env_cg, work, a, subrequest(bucket["url"], bucket["cookie"]),
                f"http://127.0.0.1:{m}/readyz", "bucket")
        fp = free_port()
        counted["the HTTP floor"] = instructions([FLOOR_BIN, str(fp)], env, work, fp, hdrs, f"http://127.0.0.1:{fp}/auth", "floor")
        if store_floor:
            fp = free_port()
            counted["the store floor"] = instructions(store_floor_cmd(fp), env, work, fp, hdrs, f"http://127.0.0.1:{fp}/auth",
                                                      "store_floor")

        # Scale: the same decision on a store of a thousand files and on one of a million (users
        # in the same proportion), each in a Redis and a mediagate of its own. The two are run in
        # pairs, in alternating order, so that the machine's drift over minutes (seen: ±20%)
        # moves both sides of each pair alike; the ratio is the median of the pairs' ratios.
        scale = None
        if args.scale_files and not args.embedded:
            template = template_of(rport, adm, uploaded["4k"])
            stores = []
            for files_n, users_n in ((SCALE_BASE_FILES, max(1, args.scale_users * SCALE_BASE_FILES // args.scale_files)),
                                     (args.scale_files, args.scale_users)):
                sport = start_redis(procs)
                sredis = procs[-1]
                sapp, sauth, sadm = start_mediagate(env, work, f"scale{files_n}", procs,
                                                    MEDIAGATE__STORE__URL=f"redis://127.0.0.1:{sport}/")
                before_mem, t0 = used_memory(sport), time.monotonic()
                uid, utok, ftok, name = populate(sport, template, files_n, users_n)
                loaded = time.monotonic() - t0
                per_file = (used_memory(sport) - before_mem) / files_n
                cookie = "mediagate_session=" + admin(sadm, "POST", "/v1/sessions", json.dumps({"user_id": uid}).encode())["session_id"]
                uri = f"/media/{utok}/{ftok}/{name}"
                check = urllib.request.Request(f"http://127.0.0.1:{sauth}/auth", headers=subrequest(uri, cookie))
                with urllib.request.urlopen(check) as r:
                    assert r.status == 200, "a populated file must be allowed to its owner"
                stores.append({"files": files_n, "users": users_n, "loaded": loaded, "per_file": per_file,
                               "run": lambda a=sauth, p=sapp.pid, u=uri, c=cookie, rp=sredis.pid: direct_once(a, p, u, c, rp),
                               "rs": []})
            for rnd in range(max(args.rounds, SCALE_PAIRS)):
                for s in stores if rnd % 2 == 0 else reversed(stores):
                    s["rs"].append(s["run"]())
            scale = stores
        end_rss = rss_kib(app.pid)
        end_rss_cached = rss_kib(cached.pid) if cached else None
        ready = sorted(ready_ms(env, work, os.path.join(work, f"ready{i}.db")) for i in range(5))[2]
        embedded = embedded_scale(env, work, args.scale_files, args.scale_users) if args.scale_files else None

        median, paired = median_of, paired_ratio

        cpu = open("/proc/cpuinfo").read()
        model = re.search(r"model name\s*:\s*(.*)", cpu)
        nginx_v = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
        print(f"\nmediagate bench: {os.cpu_count()} cores ({model.group(1) if model else 'unknown CPU'}), {nginx_v}, "
              f"nginx 2 workers, wrk -t2 on the same cores, loopback, {args.rounds} interleaved rounds of {args.seconds} s, medians\n")
        if not args.direct_only:
            print("| setup | file | conns | requests/s | p50 ms | p99 ms | non-2xx | vs plain | vs stub (lowest-highest round) | CPU µs/response: nginx + mediagate + redis |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for size in files if not args.direct_only else []:
            for conns in (8, 64):
                plain_rs = results[("plain nginx static", size, conns)]
                stub_rs = results[("auth_request to a no-op 204 stub", size, conns)]
                for name in setups:
                    rs = results[(name, size, conns)]
                    c = (median(rs, "cpu_nginx"), median(rs, "cpu_mediagate"), median(rs, "cpu_redis"))
                    vs_stub = paired(rs, stub_rs)
                    print(f"| {name} | {size} | {conns} | {median(rs, 'rps'):,.0f} | {median(rs, 'p50'):.2f} | {median(rs, 'p99'):.2f} | "
                          f"{max(x['non2xx'] for x in rs)} | {paired(rs, plain_rs)[0]:.2f} | "
                          f"{vs_stub[0]:.2f} ({vs_stub[1]:.2f}-{vs_stub[2]:.2f}) | "
                          f"{sum(c):.0f} = {c[0]:.0f} + {c[1]:.0f} + {c[2]:.0f} |")
        print_realistic(rot_results, rot_setups, median, paired)
        print()
        for mode, rs in direct.items():
            print(f"auth listener directly, {mode} (wrk → mediagate, 64 conns): {median(rs, 'rps'):,.0f} decisions/s, "
                  f"p99 {median(rs, 'p99'):.2f} ms, CPU per decision {median(rs, 'cpu_mediagate'):.1f} µs mediagate + "
                  f"{median(rs, 'cpu_redis'):.1f} µs redis-server, non-2xx {max(x['non2xx'] for x in rs)}")
        print(f"HTTP floor (actix-web with mediagate's workers and allocator answering 200, nothing else; same wrk): "
              f"{median(floor_rs, 'rps'):,.0f} requests/s, CPU per request {median(floor_rs, 'cpu_mediagate'):.1f} µs")
        # What a decision costs beyond what any actix-web answer costs on the same machine in the
        # same run: the part of the figure that mediagate's own code decides.
        floor_cpu = median(floor_rs, "cpu_mediagate")
        print("CPU per decision above the HTTP floor: " + ", ".join(
            f"{mode} {median(rs, 'cpu_mediagate') - floor_cpu:.1f} µs mediagate + {median(rs, 'cpu_redis'):.1f} µs redis-server"
            for mode, rs in direct.items()))
        if bucket:
            local, remote = (median(direct[k], "cpu_mediagate") for k in ("default mode", "default mode, bytes in a bucket"))
            print(f"bytes in a bucket (s3s-fs; each allow carries a presigned URL): CPU per decision {remote:.1f} µs "
                  f"mediagate against {local:.1f} µs with local storage, {remote / local:.2f} of it")
        if store_floor_rs:
            # Split once more: what the store's round trip costs, and what the decision adds to it.
            sf_cpu = median(store_floor_rs, "cpu_mediagate")
            print(f"store floor (the HTTP floor + mediagate's one Redis lookup per request, no decision; same wrk): "
                  f"{median(store_floor_rs, 'rps'):,.0f} requests/s, CPU per request {sf_cpu:.1f} µs + "
                  f"{median(store_floor_rs, 'cpu_redis'):.1f} µs redis-server ({sf_cpu - floor_cpu:.1f} µs above the HTTP floor); "
                  f"default mode {median(direct['default mode'], 'cpu_mediagate') - sf_cpu:.1f} µs above it")
        if all(counted.values()):
            print("user-space instructions per request (callgrind, 2,000 sequential requests on one connection, one worker; "
                  "within 1% from run to run, whatever the machine's load): "
                  + ", ".join(f"{k} {v:,.0f}" for k, v in counted.items())
                  + (" (mediagate not counted: the embedded store admits one process)" if args.embedded else ""))
        else:
            print("user-space instructions per request: not counted (valgrind is missing)")
        if scale:
            small, large = scale
            pairs = sorted(b["rps"] / a["rps"] for a, b in zip(small["rs"], large["rs"]))
            print(f"scale: {large['files']:,} files and {large['users']:,} users loaded in {large['loaded']:.1f} s; "
                  f"Redis memory {large['per_file']:.0f} bytes per file (user keys included); direct decisions "
                  + " against ".join(f"{s['files']:,} files: {median(s['rs'], 'rps'):,.0f}/s, CPU {median(s['rs'], 'cpu_mediagate'):.1f} + "
                                     f"{median(s['rs'], 'cpu_redis'):.1f} µs" for s in (large, small))
                  + f"; the large store's throughput is {pairs[len(pairs) // 2]:.2f} of the small one's (median of "
                  f"{len(pairs)} alternating pairs; the pairs ranged {pairs[0]:.2f}-{pairs[-1]:.2f})")
        print(f"mediagate RSS: {started_rss} KiB at start, {end_rss} KiB after the benchmark"
              + (f" (cached instance: {end_rss_cached} KiB)" if cached else ""))
        print(f"ready on a new embedded store: {ready:.0f} ms from exec to the first 200 from /readyz (median of 5)")
        if embedded:
            filled, size, first, cold, warm = embedded
            print(f"embedded store with {args.scale_files:,} files and {args.scale_users:,} users ({size / 2**20:.0f} MiB, "
                  f"filled through the store API in {filled:.0f} s): ready {first:.0f} ms after exec "
                  f"({'page cache dropped first' if cold else 'page cache not dropped: not root'}), {warm:.0f} ms warm (median of 5)")
        bad = sum(x["non2xx"] for k, rs in results.items() for x in rs)
        bad += sum(x["non2xx"] for rs in direct.values() for x in rs) + sum(x["non2xx"] for s in scale or [] for x in s["rs"])
        refused(work, rot_results, bad)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def start_bucket(env, work, procs, data):
    """A fifth mediagate, in default mode with the bytes in a bucket of s3s-fs (which checks
    every signature), under a Redis prefix of its own, with one file of its owner's: its env,
    process, auth port, the file's URL and the owner's cookie."""
    if not os.path.exists(S3_BIN):
        sys.exit(f"{S3_BIN} is missing: make tools")
    port = free_port()
    os.makedirs(os.path.join(work, "s3", "media-bucket"))
    procs.append(subprocess.Popen([S3_BIN, "--host", "127.0.0.1", "--port", str(port), "--access-key", S3_KEYS[0],
                                   "--secret-key", S3_KEYS[1], os.path.join(work, "s3")],
                                  stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "s3.log"), "w")))
    deadline = time.time() + 20
    while not listening(port):
        if time.time() > deadline:
            sys.exit("s3s-fs did not start")
        time.sleep(0.05)
    benv = dict(env, MEDIAGATE__STORE__PREFIX="bucketbench", MEDIAGATE__STORAGE__URL="s3://media-bucket/site",
                AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ALLOW_HTTP="true", AWS_ACCESS_KEY_ID=S3_KEYS[0],
                AWS_SECRET_ACCESS_KEY=S3_KEYS[1], AWS_REGION="us-east-1")
    app, auth, adm = start_mediagate(benv, work, "app5", procs)
    admin(adm, "PUT", "/v1/users/owner")
    url = admin(adm, "POST", "/v1/users/owner/files?filename=4k.bin", data, "application/octet-stream")["url"]
    sid = admin(adm, "POST", "/v1/sessions", json.dumps({"user_id": "owner"}).encode())["session_id"]
    return {"env": benv, "app": app, "auth": auth, "url": url, "cookie": f"mediagate_session={sid}"}


def median_of(rs, k):
    vals = sorted(x[k] for x in rs)
    return vals[len(vals) // 2]


def paired_ratio(rs, against):
    """Each round's requests/s of `rs` over those of `against` in the same round, a few seconds
    apart, so that the machine's drift over the run (seen: ±15% from round to round) moves both
    alike: the median of those ratios, the lowest and the highest."""
    ratios = sorted(a["rps"] / b["rps"] for a, b in zip(rs, against))
    return ratios[len(ratios) // 2], ratios[0], ratios[-1]


def refused(work, rot_results, bad=0):
    """Fails the run on any non-2xx answer to an allowed request, with what nginx logged."""
    bad += sum(x["non2xx"] for rs in rot_results.values() for x in rs)
    if not bad:
        return
    for name in sorted(os.listdir(work)):
        log = os.path.join(work, name, "error.log")
        if os.path.exists(log):
            lines = open(log, errors="replace").read().splitlines()
            print(f"{name}/error.log, {len(lines)} lines, the last 5:", *lines[-5:], sep="\n  ", file=sys.stderr)
    sys.exit(f"{bad} non-2xx answers to allowed requests")


def realistic_rounds(args, work, data, rotation, http, http2, sockets, nginx_pids, app_pids, redis_pid):
    """The realistic workload's rows, 4 KiB, 8 and 64 connections, in interleaved rounds.
    `sockets`: the ports of the nginx in front of the instance on a unix socket (`nginx4`) and
    of the one with Redis on a unix socket too (`nginx6`), where they run."""
    for url, cookie, plain_name in rotation[:: max(1, len(rotation) // 20)]:
        assert fetch(http, url, cookie) == (200, data), "rotation: an owner must get the exact bytes"
        other = rotation[(rotation.index((url, cookie, plain_name)) + 1) % len(rotation)][1]
        assert fetch(http, url, other)[0] == 403, "rotation: another user must be refused"
    lua = lambda name, reqs: realistic.script(os.path.join(work, f"{name}.lua"), reqs)  # noqa: E731
    mg = lua("mediagate", [(u, c) for u, c, _ in rotation])
    setups = {
        "plain nginx static": (http, lua("plain", [(f"/plain/{n}", None) for _, _, n in rotation]), "nginx", "app"),
        "auth_request to a no-op 204 stub": (http, lua("stub", [(f"/stub/{n}", None) for _, _, n in rotation]), "nginx", "app"),
        "auth_request to a no-op 204 stub over a unix socket": (
            http, lua("ustub", [(f"/ustub/{n}", None) for _, _, n in rotation]), "nginx", "app"),
        "mediagate (every request decided, TCP)": (http, mg, "nginx", "app"),
    }
    if sockets["nginx4"]:
        setups["mediagate (every request decided, unix socket)"] = (sockets["nginx4"], mg, "nginx4", "app4")
    if sockets["nginx6"]:
        setups["mediagate (every request decided, unix sockets to nginx and to Redis)"] = (
            sockets["nginx6"], mg, "nginx6", "app6")
    if http2:
        setups["mediagate (cached mode, TCP)"] = (http2, mg, "nginx2", "cached")
    results = {}
    for rnd in range(args.rounds):
        for conns in (8, 64):
            for name in list(setups) if rnd % 2 == 0 else list(reversed(setups)):
                port, script, ng, app = setups[name]
                pids = {"nginx": nginx_pids[ng], "mediagate": [app_pids[app]], "redis": [redis_pid]}
                t0 = {k: cpu_ticks(v) for k, v in pids.items()}
                r = wrk(f"http://127.0.0.1:{port}/", conns, args.seconds, [], script)
                for k, v in t0.items():
                    r[f"cpu_{k}"] = (cpu_ticks(pids[k]) - v) / TICK * 1e6 / max(r["total"], 1)
                results.setdefault((name, conns), []).append(r)
        print(f"realistic round {rnd + 1}/{args.rounds} done", file=sys.stderr)
    return results, setups


def print_realistic(results, setups, median, paired):
    print(f"\nrealistic workload: {realistic.FILES:,} files of 4 KiB, {realistic.USERS} users each with a session, "
          "requested in rotation (wrk Lua script; the plain and stub rows rotate over the same files)\n")
    print("| setup | conns | requests/s | p50 ms | p99 ms | non-2xx | vs plain | vs stub | vs unix stub | CPU µs/response: nginx + mediagate + redis |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for conns in (8, 64):
        base = {k: results[(k, conns)] for k in ("plain nginx static", "auth_request to a no-op 204 stub",
                                                  "auth_request to a no-op 204 stub over a unix socket")}
        for name in setups:
            rs = results[(name, conns)]
            c = (median(rs, "cpu_nginx"), median(rs, "cpu_mediagate"), median(rs, "cpu_redis"))
            vs = [paired(rs, b)[0] for b in base.values()]
            print(f"| {name} | {conns} | {median(rs, 'rps'):,.0f} | {median(rs, 'p50'):.2f} | {median(rs, 'p99'):.2f} | "
                  f"{max(x['non2xx'] for x in rs)} | {vs[0]:.2f} | {vs[1]:.2f} | {vs[2]:.2f} | "
                  f"{sum(c):.0f} = {c[0]:.0f} + {c[1]:.0f} + {c[2]:.0f} |")


if __name__ == "__main__":
    main()
