"""/api/v1/namespaces/{ns}/files: namespace files in the internal storage, and their bad input."""

from __future__ import annotations

import io
import zipfile

import pytest
from conftest import Api

pytestmark = pytest.mark.anyio


async def test_upload_get_list_move_delete(api: Api) -> None:
    from eventstore.storage import InternalStorage, namespace_file_uri

    c, ns = api.client, api.ns
    base = f"/api/v1/namespaces/{ns}/files"
    r = await c.post(
        base, params={"path": "scripts/etl.py"}, files={"fileContent": ("etl.py", b"print(1)\n")}
    )
    assert r.status_code == 200, r.text
    assert r.json() == [
        {
            "fileName": "scripts/etl.py",
            "type": "File",
            "size": 9,
            "lastModifiedTime": None,
            "creationTime": None,
        }
    ]
    # where a flow's read('scripts/etl.py') finds it
    storage = InternalStorage(api.rt.store)
    assert await storage.get(namespace_file_uri(ns, "scripts/etl.py")) == b"print(1)\n"
    r = await c.post(base, params={"path": "/README.md"}, content=b"# hi")  # raw body, leading slash
    assert r.status_code == 200

    r = await c.get(base, params={"path": "scripts/etl.py"})
    assert r.status_code == 200 and r.content == b"print(1)\n"
    r = await c.get(f"{base}/directory")
    assert r.status_code == 200, r.text
    assert [(x["fileName"], x["type"]) for x in r.json()] == [("README.md", "File"), ("scripts", "Directory")]
    assert r.json()[0]["size"] == 4 and r.json()[0]["lastModifiedTime"] > 0
    r = await c.get(f"{base}/directory", params={"path": "scripts"})
    assert [(x["fileName"], x["size"]) for x in r.json()] == [("etl.py", 9)]
    r = await c.get(f"{base}/stats", params={"path": "scripts"})
    assert r.json()["type"] == "Directory"
    r = await c.get(f"{base}/stats", params={"path": "scripts/etl.py"})
    assert r.json()["type"] == "File" and r.json()["size"] == 9
    assert (await c.get(f"{base}/search", params={"q": "etl"})).json() == ["/scripts/etl.py"]

    r = await c.put(base, params={"from": "scripts", "to": "lib"})
    assert r.status_code == 200 and r.json() == ["/lib/etl.py"]
    assert (await c.get(base, params={"path": "scripts/etl.py"})).status_code == 404
    assert (await c.get(base, params={"path": "lib/etl.py"})).content == b"print(1)\n"

    # a zip upload: one file per entry
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a/one.txt", "1")
        z.writestr("a/b/two.txt", "22")
    r = await c.post(base, files={"fileContent": ("bundle.zip", buf.getvalue())})
    assert r.status_code == 200 and [x["fileName"] for x in r.json()] == ["a/one.txt", "a/b/two.txt"]
    r = await c.get(f"{base}/export")
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert sorted(z.namelist()) == ["README.md", "a/b/two.txt", "a/one.txt", "lib/etl.py"]
        assert z.read("a/b/two.txt") == b"22"

    assert (await c.delete(base, params={"path": "a"})).status_code == 204  # a directory: all in it
    assert (await c.get(f"{base}/search")).json() == ["/README.md", "/lib/etl.py"]
    assert (await c.delete(base, params={"path": "README.md"})).status_code == 204
    assert (await c.get(f"{base}/search")).json() == ["/lib/etl.py"]
    # another namespace sees none of them
    assert (await c.get(f"/api/v1/namespaces/{ns}.sub/files/directory")).json() == []


async def test_bad_input_is_4xx(api: Api) -> None:
    c, ns = api.client, api.ns
    base = f"/api/v1/namespaces/{ns}/files"
    cases = [
        ("GET", base, {"path": "../etc/passwd"}, 400),
        ("GET", base, {"path": "a//b"}, 400),
        ("GET", base, {}, 400),
        ("GET", base, {"path": "missing.txt"}, 404),
        ("POST", base, {}, 400),  # no path for a plain file
        ("POST", base, {"path": "./x"}, 400),
        ("GET", "/api/v1/namespaces/bad..ns/files", {"path": "x"}, 400),
        ("GET", f"{base}/directory", {"path": "nope"}, 404),
        ("GET", f"{base}/stats", {"path": "nope"}, 404),
        ("DELETE", base, {"path": "nope"}, 404),
        ("DELETE", base, {}, 400),
        ("PUT", base, {"from": "nope", "to": "x"}, 404),
        ("PUT", base, {"from": "a", "to": "a/b"}, 400),
    ]
    for method, url, params, status in cases:
        r = await c.request(method, url, params=params, content=b"data" if method == "POST" else None)
        assert r.status_code == status and r.json()["message"], (method, params, r.status_code, r.text)
    r = await c.post(base, files={"fileContent": ("x.zip", b"not a zip")})
    assert r.status_code == 400 and "zip" in r.json()["message"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ok.txt", "1")
        z.writestr("../evil.txt", "2")
    r = await c.post(base, files={"fileContent": ("x.zip", buf.getvalue())})
    assert r.status_code == 400
    assert (await c.get(f"{base}/search")).json() == []  # nothing of the bad zip was written
    r = await c.post(base, files={"other": ("a.txt", b"1"), "more": ("b.txt", b"2")})
    assert r.status_code == 400 and "fileContent" in r.json()["message"]
    await c.post(base, params={"path": "f.txt"}, content=b"1")
    r = await c.get(f"{base}/directory", params={"path": "f.txt"})
    assert r.status_code == 400 and "is a file" in r.json()["message"]
