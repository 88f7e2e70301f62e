"""What each part of mediagate's nginx snippet costs nginx, counted rather than timed.

nginx runs under callgrind (one process, no master), with mediagate's own rendered config, and
its auth upstream is a second nginx, not counted, that answers every subrequest as an allow
does: 200 with the X-Media-* headers of one file on disk. The same 2,000 keep-alive requests
are counted with the whole snippet, then with one part taken out at a time, and on a bare
location (`auth_request` to the same upstream, the file served by `alias`). (The four `auth_request_set` cannot be
taken out alone: the rest of the snippet reads the variables they set.) The difference
from the whole snippet is what that part costs per response, in user-space instructions:
repeatable to well under 1%, where time per response moves by 10% from run to run here.

    python3 bench/snippet_cost.py   (make bench runs it after bench.py)
"""
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "mediagate")
USER_TOKEN, FILE_TOKEN = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
STORAGE_PATH = "ab/ab" + "0" * 30
URL = f"/media/{USER_TOKEN}/{FILE_TOKEN}/report.pdf"
REQUESTS = 2000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, patience=60.0):
    """Whether something listens on `port` within `patience` seconds."""
    deadline = time.time() + patience
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def nginx_conf(body):
    return f"""daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 4096;
pid nginx.pid;
error_log error.log warn;
events {{ worker_connections 1024; }}
{body}
"""


def render(listen, upstream, media):
    conf = subprocess.run([BIN, "nginx-config", "--listen", f"127.0.0.1:{listen}", "--storage-root", media,
                           "--auth-upstream", f"127.0.0.1:{upstream}", "--error-log", "error.log",
                           "--access-log", "off"], capture_output=True, text=True, check=True).stdout
    # One process, counted whole.
    conf = conf.replace("worker_processes auto;", "worker_processes 1;\nmaster_process off;", 1)
    return conf


def without(pattern, count=None):
    """A variant: the rendered config with every line matching `pattern` removed; `count` is
    how many must match (so that a change to the snippet cannot make a variant silently equal
    the whole)."""
    def apply(conf):
        new, n = re.subn(rf"^[ \t]*{pattern}[^\n]*\n", "", conf, flags=re.M)
        assert n and (count is None or n == count), f"{pattern!r} matched {n} lines"
        return new
    return apply


def bare(media):
    """A variant: the media location replaced by the plainest guarded one (and the storage
    location, which it does not reach, without the headers that read the decision's variables)."""
    def apply(conf):
        conf = FILE_HEADERS(conf)
        start = conf.index("location ^~ /media/ {")
        depth, end = 0, start
        for end in range(start, len(conf)):
            depth += {"{": 1, "}": -1}.get(conf[end], 0)
            if depth == 0 and conf[end] == "}":
                break
        end += 1
        return conf[:start] + f"""location = {URL} {{
        auth_request /_mediagate/auth;
        alias {media}/{STORAGE_PATH};
    }}""" + conf[end:]
    return apply


FILE_HEADERS = without(r"add_header (Content-Type|Content-Disposition|Content-Security-Policy|X-Content-Type-Options|"
                       r"Referrer-Policy|Cache-Control) ", 6)
VARIANTS = [
    ("the whole snippet", lambda c: c),
    ("without the 6 add_header of the file (types, disposition, CSP, nosniff, referrer, cache)", FILE_HEADERS),
    ("without limit_except", without(r"limit_except ", 1)),
    ("without the 5 request headers for the decision (URI, method, address, cookie, authorization)",
     without(r"proxy_set_header (X-Original-URI|X-Original-Method|X-Original-Remote-Addr|Cookie|Authorization) ", 5)),
    ("without proxy_pass_request_headers off (every header of the request forwarded)",
     without(r"proxy_pass_request_headers off;", 1)),
    ("without disable_symlinks", without(r"disable_symlinks on;", 1)),
    ("without open_file_cache", without(r"open_file_cache", 2)),
]


def count(conf, name, work, port):
    ngdir = os.path.join(work, name)
    os.makedirs(ngdir)
    with open(os.path.join(ngdir, "nginx.conf"), "w") as f:
        f.write(conf)
    out = os.path.join(ngdir, "callgrind.out")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "nginx", "-p", ngdir,
                          "-c", os.path.join(ngdir, "nginx.conf"), "-e", os.path.join(ngdir, "startup.log")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_port(port):
            logs = "".join(open(os.path.join(ngdir, n)).read() for n in ("startup.log", "error.log")
                           if os.path.exists(os.path.join(ngdir, n)))
            sys.exit(f"{name}: nginx did not start under valgrind: {logs[-2000:]}")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Cookie": "mediagate_session=" + "s" * 43, "User-Agent": "snippet-cost", "Accept": "*/*"}

        def run(n):
            for _ in range(n):
                c.request("GET", URL, headers=headers)
                r = c.getresponse()
                body = r.read()
                assert r.status == 200 and len(body) == 4096, f"{name}: {r.status}, {len(body)} bytes"
        run(200)
        subprocess.run(["callgrind_control", "-z", str(p.pid)], check=True, capture_output=True)
        run(REQUESTS)
        subprocess.run(["callgrind_control", "-d", str(p.pid)], check=True, capture_output=True)
        with open(out + ".1") as f:
            return int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M).group(1)) / REQUESTS
    finally:
        p.terminate()
        p.wait()


def main():
    for tool in ("valgrind", "callgrind_control", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install valgrind nginx")
    work = tempfile.mkdtemp(prefix="mediagate-snippet-")
    os.chmod(work, 0o755)
    procs = []
    try:
        media = os.path.join(work, "media")
        os.makedirs(os.path.join(media, os.path.dirname(STORAGE_PATH)))
        with open(os.path.join(media, STORAGE_PATH), "wb") as f:
            f.write(os.urandom(4096))
        for d in (work, media, os.path.join(media, "ab")):
            os.chmod(d, 0o755)
        os.chmod(os.path.join(media, STORAGE_PATH), 0o644)
        # The upstream: an allow for every subrequest, as mediagate answers one.
        up = free_port()
        updir = os.path.join(work, "upstream")
        os.makedirs(updir)
        with open(os.path.join(updir, "nginx.conf"), "w") as f:
            f.write(nginx_conf(f"""http {{
    access_log off;
    server {{
        listen 127.0.0.1:{up};
        location / {{
            add_header X-Media-Path {STORAGE_PATH};
            add_header X-Media-Type application/pdf;
            add_header X-Media-Disposition 'inline; filename="report.pdf"';
            return 200;
        }}
    }}
}}"""))
        procs.append(subprocess.Popen(["nginx", "-p", updir, "-c", os.path.join(updir, "nginx.conf"),
                                       "-e", os.path.join(updir, "startup.log")]))
        if not wait_port(up):
            sys.exit("the upstream nginx did not start")
        listen = free_port()
        rendered = render(listen, up, media)
        counts = []
        for i, (name, variant) in enumerate(VARIANTS + [("a bare guarded location (auth_request, alias)", bare(media))]):
            counts.append((name, count(variant(rendered), f"v{i}", work, listen)))
        whole = counts[0][1]
        print(f"\nnginx's user-space instructions per response (callgrind, {REQUESTS:,} keep-alive requests of a "
              "4 KiB file, one process; the auth subrequest answered by an uncounted nginx as an allow)\n")
        print("| config | instructions | part's cost (whole minus this) |")
        print("| --- | --- | --- |")
        for name, n in counts:
            print(f"| {name} | {n:,.0f} | {'' if n == whole else f'{whole - n:,.0f}'} |")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
