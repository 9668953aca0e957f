"""`modelspec serve`: the playground, a local web app on Starlette and uvicorn (the ``[serve]`` extra).

The page (`playground.page`, with assets/playground.js) edits a spec and shows,
as you type, its errors at their ranges, the PyTorch code, the summary and the
diagram. Behind it, the API:

    GET  /                      the page
    GET  /assets/NAME           its files: the editor (CodeMirror), Viz.js, the page's script and style
    GET  /api/examples          {"examples": [names], "start": name}: the bundled specs
    GET  /api/examples/NAME     {"name": ..., "source": ...}
    GET  /api/file              {"path": ..., "source": ..., "version": ...}: FILE, when serve was given one
    PUT  /api/file              {"source": ..., "version": ...}: write FILE (409 if it changed on disk since)
    POST /api/check             {"source": ..., "model"?, "explain"?} -> `playground.analyse`
    POST /api/run               {"source": ..., "model"?, "batch"?} -> `playground.run_once`

A request body is JSON (``Content-Type: application/json``: a page of another
site cannot send one without asking first, and is never told yes), at most
`MAX_FILE_BYTES`, the limit of a spec file: a longer one is refused with 413
before it is read whole. A request whose Host header is a name other than this
machine's is refused (`KnownHosts`). A spec is held to the same `Limits` as on
the command line; only /api/run builds a module, one at a time. A spec's mistake
is a diagnostic in the answer; modelspec's own failure is a 500 whose JSON says
so, in one line on the server's terminal too, and the server goes on.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import socket
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import playground
from .errors import WarningPolicy
from .examples import examples
from .pipeline import MAX_FILE_BYTES
from .values import Limits

START = "cnn"  # the bundled spec the page starts on, without FILE
MAX_BATCH = 64  # /api/run's batch at most: the page runs batch 2, and one run holds the server's only slot


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` reaches this machine alone.

    >>> is_loopback("127.0.0.2"), is_loopback("::1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Refused(Exception):
    """A request the API cannot take: its status and why, said to the page as JSON."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Settings:
    file: Path | None = None  # the spec the page edits and saves; None: the bundled examples
    limits: Limits | None = None  # None: the defaults
    policy: WarningPolicy | None = None  # the -W options; None shows every warning as one
    checks: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(2))
    runs: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(1))  # one module at a time


def create_app(file: str | Path | None = None, *, limits: Limits | None = None, policy: WarningPolicy | None = None,
               host: str = "127.0.0.1") -> Starlette:
    """The playground's ASGI app: editing ``file`` (saved back to it), or the bundled examples without one.
    ``host`` is where it listens (`KnownHosts` says which Host headers it answers).

    >>> from starlette.testclient import TestClient
    >>> page = TestClient(create_app(), base_url="http://127.0.0.1").post(
    ...     "/api/check", json={"source": "model M(x: [B, 4]) { fc = Linear(_, 2) }"}).json()
    >>> page["summary"]["total_params"], page["diagnostics"]
    (10, [])
    """
    settings = Settings(file=Path(file) if file is not None else None, limits=limits, policy=policy)
    routes = [
        Route("/", partial(index, settings)),
        Route("/api/examples", examples_list),
        Route("/api/examples/{name:path}", example),
        Route("/api/file", partial(spec_file, settings), methods=["GET", "PUT"]),
        Route("/api/check", partial(api_check, settings), methods=["POST"]),
        Route("/api/run", partial(api_run, settings), methods=["POST"]),
        Mount("/assets", StaticFiles(directory=playground.assets()), name="assets"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(KnownHosts, host=host)],
                     exception_handlers={Refused: refused, HTTPException: refused, Exception: failed})


class KnownHosts:
    """Refuse a request whose Host header names another site: DNS rebinding points a site's name at this
    machine, and its page could then read the answers and save the file. An address (127.0.0.1:8000,
    [::1]:8000, 192.168.1.5:8000) and ``localhost`` are always fine, being no site's name; listening on
    another address than loopback, so are this machine's own names. Starlette's TrustedHostMiddleware takes
    a list of names, and no rule for every address."""

    def __init__(self, app, host: str):
        self.app = app
        self.names = {"localhost"} if is_loopback(host) else {"localhost", socket.gethostname().lower(),
                                                              socket.getfqdn().lower()}

    def known(self, header: str) -> bool:
        name = header
        if name.startswith("["):  # [::1]:8000
            name = name[1:].partition("]")[0]
        elif name.count(":") == 1:  # 127.0.0.1:8000, localhost:8000
            name = name.partition(":")[0]
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return name.lower().rstrip(".") in self.names

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not self.known(Headers(scope=scope).get("host", "")):
            answer = JSONResponse({"error": "this server answers requests for this machine's own names, and for "
                                            "addresses: open the URL it printed"}, status_code=400)
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


# ---------------------------------------------------------------- the routes
async def index(settings: Settings, request: Request):
    state = {"static": False, "file": settings.file.name if settings.file is not None else None,
             "start": None if settings.file is not None else START, "examples": _menu(), "assets": "assets"}
    return HTMLResponse(playground.page(title="modelspec playground", state=state))


def _menu() -> list[dict]:
    return [{"name": name} for name in examples()]


async def examples_list(request: Request):
    return JSONResponse({"examples": list(examples()), "start": START})


async def example(request: Request):
    name = request.path_params["name"]
    found = examples().get(name)
    if found is None:
        raise Refused(404, f"there is no bundled spec {name!r}; GET /api/examples lists them")
    return JSONResponse({"name": name, "source": found.read_text(encoding="utf-8")})


async def spec_file(settings: Settings, request: Request):
    path = settings.file
    if path is None:
        raise Refused(404, "the server edits no file: start it as `modelspec serve FILE` to edit one")
    if request.method == "GET":
        text = _read(path)
        return JSONResponse({"path": str(path), "source": text, "version": _version(text)})
    body = await _json(request, ("source", "version"))
    source, seen = _text(body, "source"), _text(body, "version", "the version GET /api/file gave")
    if seen != _version(_read(path)):
        raise Refused(409, f"{path} changed on disk since the page read it: reload the page to see it, "
                           "or copy your text first")
    _save(path, source)
    return JSONResponse({"path": str(path), "saved": True, "version": _version(source)})


async def api_check(settings: Settings, request: Request):
    body = await _json(request, ("source", "model", "explain"))
    source, model = _text(body, "source"), _optional(body, "model", str)
    explain = bool(_optional(body, "explain", bool))
    got = await _work(request, settings.checks, partial(
        playground.analyse, source, path=_spec_path(settings), model=model, explain=explain,
        limits=settings.limits, policy=settings.policy))
    if model is not None and got["models"] and model not in got["models"]:
        raise Refused(422, f"no model {model!r}: the spec defines {', '.join(got['models'])}")
    return JSONResponse(got)


async def api_run(settings: Settings, request: Request):
    body = await _json(request, ("source", "model", "batch"))
    source, model = _text(body, "source"), _optional(body, "model", str)
    batch = _optional(body, "batch", int)
    batch = playground.BATCH if batch is None else batch
    if not 1 <= batch <= MAX_BATCH:
        raise Refused(422, f"batch must be from 1 to {MAX_BATCH}")
    try:
        import torch  # noqa: F401  (run builds a module: it needs torch, which check does not)
    except ModuleNotFoundError:
        raise Refused(503, "running a model needs torch, which is not installed here: pip install torch") from None
    got = await _work(request, settings.runs, partial(
        playground.run_once, source, path=_spec_path(settings), model=model, batch=batch, limits=settings.limits))
    return JSONResponse(got)


async def _work(request: Request, slots: anyio.CapacityLimiter, job):
    """Run ``job`` in a worker thread once one of ``slots`` is free, unless the page that asked has gone by
    then (its answer would be thrown away: a page that gave up leaves no queue behind). modelspec's own
    failure is one line here and a 500 for the page."""
    async with slots:
        if await request.is_disconnected():
            raise Refused(499, "the page that asked has gone")
        try:
            return await anyio.to_thread.run_sync(job)
        except Exception as exc:  # a bug in modelspec, not in the spec
            print(f"modelspec serve: {_internal(exc)}", file=sys.stderr, flush=True)
            raise Refused(500, _internal(exc)) from None


def _spec_path(settings: Settings) -> str | None:
    """Where the text being checked lives, so that its imports resolve beside it; None for an example."""
    return str(settings.file) if settings.file is not None else None


# ---------------------------------------------------------------- requests and answers
async def _json(request: Request, fields: tuple[str, ...]) -> dict:
    """The request's JSON object, read at most `MAX_FILE_BYTES` far (413 past that), with no key but
    ``fields``: a misspelt one ("explian") would otherwise be ignored without a word."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise Refused(415, "send the request as JSON, with Content-Type: application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdecimal() and int(declared) > MAX_FILE_BYTES:
        raise Refused(413, f"the request is {int(declared):,} bytes, over the limit of {MAX_FILE_BYTES:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise Refused(413, f"the request is over the limit of {MAX_FILE_BYTES:,} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        raise Refused(400, "the request's body is not JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, 'the request\'s body must be a JSON object, e.g. {"source": "model M(x: [B, 4]) {...}"}')
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise Refused(422, f"unknown field {unknown[0]!r}: the fields are {', '.join(fields)}")
    return body


def _text(body: dict, key: str, what: str = "the spec's text") -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise Refused(422, f"the request needs {key!r}, a string: {what}")
    return value


KINDS = {str: "a string", bool: "true or false", int: "an integer"}


def _optional(body: dict, key: str, kind: type):
    value = body.get(key)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise Refused(422, f"{key!r} must be {KINDS[kind]}")
    return value


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""  # a new file: saving creates it
    except (OSError, UnicodeDecodeError) as exc:
        raise Refused(500, f"cannot read {path}: {exc}") from None


def _save(path: Path, text: str):
    """Write the file whole or not at all: a temporary file beside it, given the file's mode, then renamed
    over it. A link is followed: the file it names is written, and the link stays."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, which no UTF-8 file can hold
        line = text.count("\n", 0, exc.start) + 1
        raise Refused(422, f"line {line} holds a character that UTF-8 cannot store ({text[exc.start]!r})") from None
    real = path.resolve()
    part = real.with_name(f".{real.name}.saving")
    try:
        part.write_bytes(data)
        if real.exists():
            shutil.copymode(real, part)
        os.replace(part, real)
    except OSError as exc:
        raise Refused(500, f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        part.unlink(missing_ok=True)


def _version(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


async def refused(request: Request, exc: Refused | HTTPException):
    """A refusal as JSON: the API's own, and Starlette's (404 for an unknown path, 405 for a wrong method)."""
    if isinstance(exc, HTTPException):
        return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}"},
                            status_code=exc.status_code)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


def _internal(exc: Exception) -> str:
    return f"internal error in modelspec, not a problem in this spec: {type(exc).__name__}: {exc}; please report it"


async def failed(request: Request, exc: Exception):
    """modelspec's own failure outside a check or a run (`_work` says those): a 500 whose JSON says so; the
    server goes on."""
    return JSONResponse({"error": _internal(exc)}, status_code=500)


# ---------------------------------------------------------------- running it
def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the server starts, so the URL printed has the real port (0: any)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def run(app, sock: socket.socket):
    """Serve ``app`` on ``sock`` until Ctrl+C; only warnings and errors are logged, not every request."""
    import uvicorn

    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
