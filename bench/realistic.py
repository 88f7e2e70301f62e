"""The realistic workload of `make bench`: many files of many users, each user with a session of
its own, requested in rotation (a wrk Lua script), so that no cache (mediagate's cached mode,
Redis', the CPU's) sees one hot URL. The plain and stub rows rotate over the same files, so
every ratio compares like with like, in the same run.
"""
import json
import os

FILES = 1000
USERS = 50


def populate(adm, admin, plain_dir, data):
    """FILES files of USERS users (each with a session), the same bytes under the plain root;
    the rotation as (mediagate URL, cookie, plain name) triples, owner's file after owner's."""
    cookies = []
    for u in range(USERS):
        admin(adm, "PUT", f"/v1/users/rot{u}")
        sid = admin(adm, "POST", "/v1/sessions", json.dumps({"user_id": f"rot{u}"}).encode())["session_id"]
        cookies.append(f"mediagate_session={sid}")
    os.makedirs(os.path.join(plain_dir, "rot"), exist_ok=True)
    triples = []
    for i in range(FILES):
        u = i % USERS
        up = admin(adm, "POST", f"/v1/users/rot{u}/files?filename=r{i}.bin", data, "application/octet-stream")
        with open(os.path.join(plain_dir, "rot", f"r{i}.bin"), "wb") as f:
            f.write(data)
        triples.append((up["url"], cookies[u], f"rot/r{i}.bin"))
    return triples


def script(path, requests):
    """A wrk script that sends `requests` ((path, cookie or None) pairs) in rotation; each wrk
    thread starts at its own offset."""
    rows = ",\n".join(
        f'    wrk.format("GET", "{p}", {{["Cookie"] = "{c}"}})' if c else f'    wrk.format("GET", "{p}")'
        for p, c in requests
    )
    # Built in init(): wrk sets the Host header only after the script is loaded, and a request
    # formatted before that has none (nginx answers 400).
    with open(path, "w") as f:
        f.write(f"""local reqs = {{}}
local i = 0
function setup(thread)
  thread:set("offset", math.random({len(requests)}))
end
function init(args)
  reqs = {{
{rows}
  }}
  i = tonumber(offset) or 0
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
""")
    return path

