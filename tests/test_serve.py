"""The playground's HTTP API (`modelspec serve`), through Starlette's TestClient and through a real server.

What the page is told about a spec must be what the CLI says of it: the same diagnostics as `check --format
json`, the same summary as `summary --json`, the same code as `codegen`. The API builds nothing but for
/api/run, holds a spec to the CLI's limits, refuses a body over the file-size limit with 413, and answers a
few hundred fuzzed sources in a row without a 500. (The page itself, in a browser: tests/test_browser.py.)
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx2")

from starlette.testclient import TestClient  # noqa: E402

from conftest import ROOT, SPECS, spec_ids  # noqa: E402
from modelspec.diagnostics import check, to_json  # noqa: E402
from modelspec.pipeline import MAX_FILE_BYTES  # noqa: E402
from modelspec.serve import bind, create_app, url_of  # noqa: E402
from modelspec.summary import summarize  # noqa: E402
from modelspec.values import Limits  # noqa: E402

BAD = "model M(x: [B, 4]) {\n  fc1 = Linear(4, 8)\n  fc2 = Linear(16, 2)\n}\n"
GOOD = BAD.replace("Linear(16, 2)", "Linear(_, 2)")


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(), base_url="http://127.0.0.1") as c:
        yield c


def post(client, url: str, body, **kw):
    return client.post(url, content=json.dumps(body), headers={"Content-Type": "application/json"}, **kw)


def test_check_answers_as_the_cli_does(client):
    got = post(client, "/api/check", {"source": BAD}).json()
    assert set(got) >= {"diagnostics", "code", "summary", "graph"}
    cli = to_json([("<page>", check(BAD))])
    assert got["diagnostics"] == cli["diagnostics"]
    (d,) = got["diagnostics"]
    assert (d["code"], d["line"], d["column"], d["path"]) == ("MS401", 3, 16, None)
    assert "16" in d["message"] and d["hint"]
    assert got["code"] is None and got["graph"] is None
    # a spec that fails part-way still has the rows built before its error, as `summary` shows them
    partial = summarize(BAD, partial=True).to_dict()
    assert got["summary"] == partial
    assert [(r["path"], r["line"], r["failed"]) for r in got["summary"]["rows"]] == \
        [("", 1, False), ("fc1", 2, False), ("fc2", 3, True)]


def test_a_fixed_spec_has_code_summary_and_diagram(client):
    from modelspec.api import generate_code

    got = post(client, "/api/check", {"source": GOOD}).json()
    assert got["diagnostics"] == [] and got["models"] == ["M"] and got["model"] == "M"
    assert got["code"] == generate_code(GOOD)
    assert got["summary"] == summarize(GOOD).to_dict()
    assert got["summary"]["total_params"] == 4 * 8 + 8 + 8 * 2 + 2
    assert got["graph"]["format"] == "dot" and got["graph"]["dot"].startswith("digraph")
    explained = post(client, "/api/check", {"source": GOOD, "explain": True}).json()["code"]
    assert explained == generate_code(GOOD, explain=True) and explained != got["code"]


@pytest.mark.parametrize("path", SPECS, ids=spec_ids(SPECS))
def test_every_bundled_spec_is_shown_whole(client, path):
    got = post(client, "/api/check", {"source": path.read_text()}).json()
    assert not [d for d in got["diagnostics"] if d["severity"] == "error"]
    assert got["code"] and got["graph"]["dot"] and got["summary"]["complete"]
    rows = got["summary"]["rows"]
    lines = path.read_text().splitlines()
    assert all(r["line"] is not None and 1 <= r["line"] <= len(lines) for r in rows)


def test_several_models_one_is_chosen(client):
    two = GOOD + "model N(y: [B, 3]) {\n  out = Linear(_, 5)\n}\n"
    first = post(client, "/api/check", {"source": two}).json()
    assert first["models"] == ["M", "N"] and first["model"] == "M"
    second = post(client, "/api/check", {"source": two, "model": "N"}).json()
    assert second["model"] == "N" and second["summary"]["model"] == "N"
    assert [r["line"] for r in second["summary"]["rows"]] == [5, 6]
    assert "class N(nn.Sequential)" in second["code"]


def test_a_syntax_error_has_no_summary(client):
    got = post(client, "/api/check", {"source": "model M(x: [B, 4] {\n"}).json()
    assert got["diagnostics"][0]["code"] == "MS101"
    assert got["summary"] is None and got["code"] is None and got["models"] == []


def test_the_cli_limits_hold(client):
    huge = "model M(x: [B, 100000]) {\n  fc = Linear(_, 10000000)\n}\n"  # 10**12 parameters
    got = post(client, "/api/check", {"source": huge}).json()
    assert [d["code"] for d in got["diagnostics"]] == ["MS601"]
    assert post(client, "/api/run", {"source": huge}).json()["diagnostics"][0]["code"] == "MS601"
    small = TestClient(create_app(limits=Limits(max_params=10)), base_url="http://127.0.0.1")
    assert post(small, "/api/check", {"source": GOOD}).json()["diagnostics"][0]["code"] == "MS601"


def test_run_builds_and_runs_one_forward(client):
    pytest.importorskip("torch")
    got = post(client, "/api/run", {"source": GOOD, "batch": 3}).json()
    assert got["ok"] and got["model"] == "M" and got["batch"] == 3
    assert got["inputs"] == [{"name": "x", "shape": [3, 4], "dtype": "float32"}]
    assert got["outputs"] == [{"name": None, "shape": [3, 2], "dtype": "float32"}]
    assert got["params"] == 58 and got["forward_ms"] >= 0
    bad = post(client, "/api/run", {"source": BAD}).json()
    assert not bad["ok"] and bad["diagnostics"][0]["line"] == 3
    assert post(client, "/api/run", {"source": GOOD, "batch": 0}).status_code == 422
    assert post(client, "/api/run", {"source": GOOD, "batch": 65}).json()["error"] == "batch must be from 1 to 64"


def test_a_body_over_the_file_limit_is_413(client):
    over = json.dumps({"source": "#" * (MAX_FILE_BYTES + 1)})
    r = client.post("/api/check", content=over, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]

    def chunks():  # no Content-Length: the limit holds as the body streams in
        for _ in range(MAX_FILE_BYTES // 65536 + 2):
            yield b" " * 65536

    r = client.post("/api/check", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("content, headers, status", [
    ("not json", {"Content-Type": "application/json"}, 400),
    ("[1, 2]", {"Content-Type": "application/json"}, 400),
    ('{"source": 3}', {"Content-Type": "application/json"}, 422),
    ('{"source": "x", "model": 3}', {"Content-Type": "application/json"}, 422),
    ('{"source": "x", "explain": "yes"}', {"Content-Type": "application/json"}, 422),
    ('{"source": "model M(x: [B, 4]) { }"}', {"Content-Type": "text/plain"}, 415),  # what another site can send
    ('{"source": "x"}', {"Content-Type": "APPLICATION/JSON; charset=utf-8"}, 200),
    ("[" * 100000 + "]" * 100000, {"Content-Type": "application/json"}, 400),
])
def test_a_bad_request_is_said_in_json(client, content, headers, status):
    r = client.post("/api/check", content=content, headers=headers)
    assert r.status_code == status and isinstance(r.json()["error" if status != 200 else "diagnostics"], (str, list))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "0.0.0.0"])
def test_a_foreign_host_name_is_refused(host):
    """DNS rebinding: a site's name pointed at this machine reaches the port, but not the app; an address,
    localhost, and (listening beyond loopback) the machine's own name do."""
    import socket

    app = create_app(host=host)
    assert TestClient(app, base_url="http://evil.example:8000").get("/").status_code == 400
    for fine in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "192.168.1.5"):
        assert TestClient(app, base_url=f"http://{fine}").get("/").status_code == 200, fine
    own = TestClient(app, base_url=f"http://{socket.gethostname()}:8000").get("/").status_code
    assert own == (400 if host != "0.0.0.0" else 200)


def test_examples_and_assets(client):
    listed = client.get("/api/examples").json()
    assert listed["start"] in listed["examples"] and "tutorials/conv" in listed["examples"]
    one = client.get("/api/examples/tutorials/conv").json()
    assert one["source"] == (ROOT / "specs" / "tutorials" / "conv.nnspec").read_text()
    assert client.get("/api/examples/nope").status_code == 404
    page = client.get("/").text
    assert 'src="assets/editor.js"' in page and "http" not in page.split("<body>")[1]  # nothing off the server
    for name in ("editor.js", "viz-global.js", "playground.js", "playground.css"):
        assert client.get(f"/assets/{name}").status_code == 200
    assert client.get("/assets/../serve.py").status_code == 404
    assert client.get("/api/file").status_code == 404  # no FILE: nothing to edit


def test_a_file_is_edited_and_saved(tmp_path):
    spec = tmp_path / "net.nnspec"
    spec.write_text(BAD)
    c = TestClient(create_app(spec), base_url="http://127.0.0.1")
    got = c.get("/api/file").json()
    assert got["source"] == BAD
    assert "net.nnspec" in c.get("/").text
    r = c.put("/api/file", content=json.dumps({"source": GOOD, "version": got["version"]}),
              headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and spec.read_text() == GOOD
    # changed on disk since the page read it: the page's text does not overwrite it
    spec.write_text(GOOD + "# edited elsewhere\n")
    r = c.put("/api/file", content=json.dumps({"source": BAD, "version": got["version"]}),
              headers={"Content-Type": "application/json"})
    assert r.status_code == 409 and spec.read_text().endswith("# edited elsewhere\n")
    r = c.put("/api/file", content=json.dumps({"source": BAD}), headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and spec.read_text().endswith("# edited elsewhere\n")  # no version: no write
    version = c.get("/api/file").json()["version"]
    r = c.put("/api/file", content=json.dumps({"source": "x\ud800", "version": version}),
              headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "UTF-8" in r.json()["error"]
    assert not list(tmp_path.glob(".*saving"))


def test_saving_through_a_link_writes_the_file_it_names(tmp_path):
    real = tmp_path / "real.nnspec"
    real.write_text(BAD)
    real.chmod(0o600)
    link = tmp_path / "link.nnspec"
    link.symlink_to(real)
    c = TestClient(create_app(link), base_url="http://127.0.0.1")
    version = c.get("/api/file").json()["version"]
    r = c.put("/api/file", content=json.dumps({"source": GOOD, "version": version}),
              headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and link.is_symlink() and real.read_text() == GOOD
    assert real.stat().st_mode & 0o777 == 0o600


def test_imports_resolve_beside_the_file(tmp_path):
    (tmp_path / "blocks.nnspec").write_text("block Two(n) {\n  seq = Sequential(Linear(_, n), ReLU())\n}\n")
    spec = tmp_path / "net.nnspec"
    text = 'from "blocks.nnspec" import Two\n\nmodel M(x: [B, 4]) {\n  a = Two(8)\n  b = Linear(_, 2)\n}\n'
    spec.write_text(text)
    c = TestClient(create_app(spec), base_url="http://127.0.0.1")
    got = post(c, "/api/check", {"source": text}).json()
    assert got["diagnostics"] == []
    # a row inside the imported block points at the line that calls it: the page shows this file alone
    assert [(r["path"], r["line"]) for r in got["summary"]["rows"]] == \
        [("", 3), ("a", 4), ("a.seq", 4), ("a.seq.0", 4), ("a.seq.1", 4), ("b", 5)]
    broken = text.replace("Two(8)", "Two(8, 9)")
    assert post(c, "/api/check", {"source": broken}).json()["diagnostics"][0]["line"] == 4
    # an error inside the imported file names that file, and the import that brings it in
    (tmp_path / "blocks.nnspec").write_text("block Two(n) {\n  seq = Sequential(Linear(3, n), ReLU())\n}\n")
    (d,) = post(c, "/api/check", {"source": text}).json()["diagnostics"]
    assert d["path"].endswith("blocks.nnspec") and (d["line"], d["code"]) == (2, "MS401")
    assert d["at"] == {"line": 1, "column": 1, "end_line": 1, "end_column": 32}


def test_a_library_has_no_model_and_no_error(client):
    got = post(client, "/api/check", {"source": "block Two(n) {\n  fc = Linear(_, n)\n}\n"}).json()
    assert got["diagnostics"] == [] and got["models"] == [] and got["code"] is None and got["summary"] is None


@pytest.fixture(scope="module")
def server():
    """A real uvicorn server on a free port of 127.0.0.1, in a thread of this process."""
    import uvicorn

    sock = bind("127.0.0.1", 0)
    srv = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = url_of(sock)
    for _ in range(200):
        if srv.started:
            break
        threading.Event().wait(0.05)
    yield url
    srv.should_exit = True
    thread.join(10)


def send(url: str, source: str) -> tuple[int, dict]:
    req = urllib.request.Request(url + "api/check", data=json.dumps({"source": source}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_fuzzed_sources_in_a_row(server):
    """Three hundred mutants of the bundled specs and programs from the grammar, one after another: each
    answer is a 200 whose diagnostics lie inside the text sent; then the server still answers a good spec."""
    from fuzzing import cases

    bad = []
    for i, (kind, data) in enumerate(cases(seed=15, n=300)):
        source = data.decode("utf-8", "replace")
        status, got = send(server, source)
        lines = source.splitlines() or [""]
        for d in got.get("diagnostics", []):
            if d["path"] is None and not 1 <= d["line"] <= len(lines) + 1:
                bad.append((i, kind, "diagnostic outside the text", d))
        if status != 200:
            bad.append((i, kind, status, got))
    assert not bad, bad[:3]
    status, got = send(server, GOOD)
    assert status == 200 and got["diagnostics"] == [] and got["code"]


def test_the_command_prints_its_url_and_opens_it(monkeypatch, capsys, tmp_path):
    """`modelspec serve --open`: the URL printed, with the port bound, is the one the browser is sent to;
    a port in use is one line and exit 2."""
    import webbrowser

    import modelspec.serve
    from modelspec.cli import main

    opened, served = [], []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    monkeypatch.setattr(modelspec.serve, "run", lambda app, sock: served.append((app, sock.getsockname())))
    assert main(["serve", str(tmp_path / "new.nnspec"), "--port", "0", "--open"]) == 0
    out = capsys.readouterr().out
    (url,) = opened
    assert url in out and url.startswith("http://127.0.0.1:") and "editing" in out and "new.nnspec" in out
    (_, (host, port)), = served
    assert (host, port) == ("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/")))
    taken = bind("127.0.0.1", 0)
    try:
        assert main(["serve", "--port", str(taken.getsockname()[1])]) == 2
        assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
    finally:
        taken.close()


@pytest.mark.parametrize("source, code", [
    ("/etc/passwd", "MS101"),  # text, never a path to read: nothing of the server's disk comes back
    ("specs/cnn.nnspec", "MS101"),
    ("", "MS900"),
    ("const N = 4", None),  # a library: fine, no model
])
def test_the_source_is_text_never_a_path(client, source, code):
    got = post(client, "/api/check", {"source": source}).json()
    assert [d["code"] for d in got["diagnostics"]] == ([code] if code else [])
    assert all(d["path"] is None for d in got["diagnostics"])
    assert "root" not in json.dumps(got)


@pytest.mark.parametrize("body, said", [
    ({"source": GOOD, "explian": True}, "unknown field 'explian': the fields are source, model, explain"),
    ({"source": GOOD, "model": "Z"}, "no model 'Z': the spec defines M"),
    ({"source": GOOD, "explain": 1}, "'explain' must be true or false"),
])
def test_a_mistaken_field_is_422(client, body, said):
    r = post(client, "/api/check", body)
    assert r.status_code == 422 and r.json()["error"] == said


def test_unknown_paths_and_methods_answer_json(client):
    assert client.get("/api/nothing").json()["error"].startswith("Not Found")
    r = client.get("/api/check")
    assert r.status_code == 405 and "GET /api/check" in r.json()["error"]


def test_the_summary_table_is_the_clis(client):
    from modelspec.summary import table_cells

    for source in (GOOD, BAD):
        got = post(client, "/api/check", {"source": source}).json()
        s = summarize(source, partial=True)
        assert got["table"]["rows"] == [list(table_cells(r)) for r in s.rows]
        assert got["table"]["header"][0] == "Layer (type)"


def test_warning_options_hold(client):
    from modelspec.errors import WarningPolicy

    unused = ("model M(x: [B, 4]) {\n  fc = Linear(_, 2)\n  spare = Linear(4, 4)\n"
              "  forward(x) {\n    return fc(x)\n  }\n}\n")
    shown = post(client, "/api/check", {"source": unused}).json()["diagnostics"]
    assert [(d["code"], d["severity"]) for d in shown] == [("MS807", "warning")]
    strict = TestClient(create_app(policy=WarningPolicy.parse(["error"])), base_url="http://127.0.0.1")
    assert [d["severity"] for d in post(strict, "/api/check", {"source": unused}).json()["diagnostics"]] == ["error"]
    quiet = TestClient(create_app(policy=WarningPolicy.parse(["no-unused-child"])), base_url="http://127.0.0.1")
    assert post(quiet, "/api/check", {"source": unused}).json()["diagnostics"] == []


def test_check_never_builds_a_module():
    """/api/check, in a fresh process: the answer comes, and torch was never imported (no module was built)."""
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from starlette.testclient import TestClient\n"
        "from modelspec.serve import create_app\n"
        "c = TestClient(create_app(), base_url='http://127.0.0.1')\n"
        "text = open('specs/resnet18.nnspec').read()\n"
        "got = c.post('/api/check', content=json.dumps({'source': text}),"
        " headers={'Content-Type': 'application/json'}).json()\n"
        "assert got['summary']['total_params'] == 11_689_512 and got['code'] and got['graph']\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
