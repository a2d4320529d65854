"""The lab's web server: a Starlette app over one RUNS_DIR, its pages rendered on the server (the package's Jinja2
templates, the same as report.html's) with a little plain JavaScript for the live curves and the forms.

    app = create_app(Path("runs"), token=None)        # what `paradigms lab runs` serves with uvicorn

Pages: ``/`` (the runs, the form that starts one, the queue), ``/run?run=ID`` (a run's curves, live while it trains;
its figures, final metrics, config, checkpoint, the commands that reproduce and resume it), ``/compare?run=A&run=B``.
Data: ``/api/runs``, ``/api/metrics?run=ID&since=N``, ``/api/events?run=ID`` (server-sent events: each new line of
metrics.jsonl, and the run's state), ``/api/queue``; ``POST /api/start``, ``/api/stop``, ``/api/resume`` (JSON), and
``POST /api/input?run=ID`` (an image's bytes: the image as the run's network sees it, :mod:`.images`).
Files: ``/file?run=ID&path=figures/curves.png`` and ``/report?run=ID``, only from inside RUNS_DIR.

Safety, for a shared machine: a token is required on every request when one is set (the command sets one for any
host but loopback); on loopback without a token, only requests addressed to a loopback host name are served (no DNS
rebinding); request bodies are limited (``MAX_BODY``); every error is a message, never a stack trace.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import mimetypes
from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..engine.runstate import read_state
from ..errors import UserError
from .queue import FieldError, RunQueue, check_request
from .runs import METRICS, NotFound, details, inside, list_runs, run_id

MAX_BODY = 10 * 1024 * 1024
"""Bytes a request body may hold."""
COOKIE = "paradigms_lab_token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
STATIC = Path(__file__).resolve().parent / "static"
POLL_S = 0.5
"""How often a live page's stream looks for new lines of metrics.jsonl (a new point shows within a second)."""


class Limits:
    """ASGI middleware: the token (when set), the Host header (loopback without a token), the body's size."""

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        problem = self.refuse(request)
        if problem is not None:
            return await problem(scope, receive, send)
        if self.token is not None and request.query_params.get("token") and not request.cookies.get(COOKIE):
            send = _with_cookie(send, self.token)     # the page's own requests then carry the token
        size = int(request.headers.get("content-length") or 0)
        if size > MAX_BODY:
            return await _error(413, f"the request body is {size:,} bytes; at most {MAX_BODY:,}", request)(
                scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except TooLarge:
            await _error(413, f"the request body is over {MAX_BODY:,} bytes", request)(scope, receive, send)

    def refuse(self, request: Request):
        if self.token is None:
            if (request.url.hostname or "") not in LOOPBACK_HOSTS:
                return _error(403, "this lab serves its own machine only (open it at http://127.0.0.1)", request)
            return None
        given = _bearer(request) or request.cookies.get(COOKIE) or request.query_params.get("token")
        if not given:
            return _error(401, "this lab needs its token: open the address `paradigms lab` printed (with "
                               "?token=...)", request)
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return _error(403, "wrong token", request)
        return None


class TooLarge(Exception):
    pass


def _with_cookie(send, token: str):
    """``send`` that adds the token as an HttpOnly, same-site cookie to the response's headers."""
    async def wrapped(message):
        if message["type"] == "http.response.start":
            cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict".encode()
            message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
        await send(message)

    return wrapped


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization") or ""
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _error(status: int, message: str, request: Request | None = None) -> Response:
    if request is not None and request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    return HTMLResponse(_page("error.html", title=f"{status}", message=message), status_code=status)


@functools.cache
def _env():
    """The templates, loaded and compiled once per lab (a page is then a render, not a compile)."""
    from ..engine.report import templates

    return templates()


def _page(name: str, **context) -> str:
    return _env().get_template(f"lab/{name}").render(**context)


def create_app(root: Path, token: str | None = None, queue: RunQueue | None = None) -> Starlette:
    """The lab over ``root`` (RUNS_DIR); ``token``: required on every request when given."""
    root = Path(root).resolve()
    queue = queue if queue is not None else RunQueue(root)

    def run_folder(request: Request, key: str = "run") -> Path:
        rel = request.query_params.get(key)
        if not rel:
            raise NotFound(f"name a run: ?{key}=RUN (a folder inside the runs folder)")
        path = inside(root, rel)
        if not (path / "config.yaml").is_file():
            raise NotFound(f"there is no run {rel!r} in the runs folder")
        return path

    async def index(request: Request) -> Response:
        from .. import recipes

        runs = await asyncio.to_thread(list_runs, root)
        names = sorted(recipes.all_recipes())
        from ..data.registry import names as dataset_names

        from .panels import PANELS

        return HTMLResponse(_page("runs.html", title="paradigms lab", runs=runs, root=str(root), recipes=names,
                                  panels=list(PANELS.values()),
                                  datasets=dataset_names(), queue=queue.snapshot()))

    async def api_runs(request: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(list_runs, root))

    async def run_page(request: Request) -> Response:
        run = run_folder(request)
        info = await asyncio.to_thread(details, root, run)
        figures = [{**f, "src": f"/file?run={quote(info['id'])}&path=figures/{quote(f['name'])}.png"}
                   for f in await asyncio.to_thread(figure_entries, run) if f["name"] != "curves"]  # drawn live
        from .panels import PANELS, fits

        panels = [p for p in PANELS.values() if fits(p, run)]
        return HTMLResponse(_page("run.html", title=f"{info['recipe']} on {info['dataset']} · {info['id']}", run=info,
                                  figures=figures, queue=[j for j in queue.snapshot() if j["run"] == info["id"]],
                                  panels=panels))

    async def compare(request: Request) -> Response:
        ids = request.query_params.getlist("run")
        if len(ids) < 2:
            raise UserError("compare needs two runs or more: /compare?run=A&run=B")
        runs = []
        for rel in ids[:8]:
            path = inside(root, rel)
            if not (path / "config.yaml").is_file():
                raise NotFound(f"there is no run {rel!r} in the runs folder")
            runs.append(await asyncio.to_thread(details, root, path))
        keys = sorted({k for r in runs for k in r["config"]})
        config = []
        for k in keys:
            values = [r["config"].get(k, "—") for r in runs]
            config.append((k, values, len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1))
        metrics = sorted({k for r in runs for k, _ in r["final"]})
        finals = [(k, [dict(r["final"]).get(k, "—") for r in runs]) for k in metrics]
        return HTMLResponse(_page("compare.html", title="compare · paradigms lab", runs=runs, config=config,
                                  finals=finals))

    async def api_metrics(request: Request) -> Response:
        run = run_folder(request)
        since = _int(request.query_params.get("since"), 0)
        rows, count = await asyncio.to_thread(METRICS.json_rows, run, since)
        state = json.dumps(read_state(run)["state"])
        return Response(f'{{"rows": {rows}, "next": {count}, "state": {state}}}', media_type="application/json")

    async def events(request: Request) -> Response:
        run = run_folder(request)
        since = _int(request.query_params.get("since"), 0)

        async def stream():
            sent, last_state = since, None
            while True:
                rows, count = await asyncio.to_thread(METRICS.json_rows, run, sent)
                if count > sent:
                    yield f'event: metrics\ndata: {{"rows": {rows}, "next": {count}}}\n\n'
                    sent = count
                state = read_state(run)["state"]
                if state != last_state:
                    yield f"event: state\ndata: {json.dumps({'state': state})}\n\n"
                    last_state = state
                if state != "running" and count == sent:
                    yield "event: end\ndata: {}\n\n"
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(POLL_S)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def file(request: Request) -> Response:
        run = run_folder(request)
        rel = request.query_params.get("path") or ""
        path = inside(run, rel)
        if not path.is_file():
            raise NotFound(f"{run_id(root, run)} has no file {rel!r}")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if kind not in ("image/png", "image/jpeg", "text/html", "application/json", "text/plain"):
            kind = "text/plain" if path.suffix in (".jsonl", ".yaml", ".txt", ".tsv") else "application/octet-stream"
        return FileResponse(path, media_type=kind, headers={"Cache-Control": "no-store"})

    async def report(request: Request) -> Response:
        run = run_folder(request)
        if not (run / "report.html").is_file():
            raise NotFound(f"{run_id(root, run)} has no report.html yet (it is written when the run ends)")
        return FileResponse(run / "report.html", media_type="text/html")

    async def api_queue(request: Request) -> Response:
        return JSONResponse(queue.snapshot())

    async def start(request: Request) -> Response:
        body = await _json(request)
        sets = body.get("sets") or []
        if isinstance(sets, str):
            sets = [s.strip() for s in sets.splitlines() if s.strip()]
        if not isinstance(sets, list):
            raise FieldError("sets", "settings are key=value lines")
        seed = body.get("seed")
        if seed not in (None, ""):
            try:
                seed = int(seed)
            except (TypeError, ValueError):
                raise FieldError("seed", f"seed {seed!r} is not a whole number") from None
        else:
            seed = None
        checked = await asyncio.to_thread(check_request, str(body.get("recipe") or ""), body.get("dataset") or None,
                                          str(body.get("preset") or "quick"), sets, seed)
        job = queue.submit(checked)
        return JSONResponse({"job": job.id, "run": job.run, "state": job.state})

    async def stop(request: Request) -> Response:
        body = await _json(request)
        job = queue.stop(_int(body.get("job"), -1))
        return JSONResponse({"job": job.id, "state": job.state})

    async def resume(request: Request) -> Response:
        body = await _json(request)
        rel = str(body.get("run") or "")
        path = inside(root, rel)
        if not (path / "config.yaml").is_file():
            raise NotFound(f"there is no run {rel!r} in the runs folder")
        job = queue.resume(run_id(root, path))
        return JSONResponse({"job": job.id, "run": job.run, "state": job.state})

    async def image_input(request: Request) -> Response:
        from .images import network_input

        run = run_folder(request)
        data = await request.body()
        return JSONResponse(await asyncio.to_thread(network_input, run, data))

    async def panel_page(request: Request) -> Response:
        from .panels import PANELS, fits

        panel = PANELS.get(request.path_params["name"])
        if panel is None:
            raise NotFound(f"there is no panel {request.path_params['name']!r}; there are {', '.join(PANELS)}")
        runs = [r for r in await asyncio.to_thread(list_runs, root) if fits(panel, root / r["id"])]
        return HTMLResponse(_page("panel.html", title=f"{panel.title} · paradigms lab", panel=panel, runs=runs,
                                  query=dict(request.query_params)))

    async def panel_api(request: Request) -> Response:
        from .panels import EXTRA, PANELS, check_fits, provenance

        name = request.path_params["name"]
        panel = PANELS.get(name)
        if panel is None and name not in EXTRA:
            raise NotFound(f"there is no panel {name!r}; there are {', '.join(PANELS)}")
        run = run_folder(request)
        if panel is not None:
            check_fits(panel, root, run)
        body = await request.body()
        answer = panel.answer if panel is not None else EXTRA[name]
        result = await asyncio.to_thread(answer, run, dict(request.query_params), body)
        return JSONResponse({**result, "run": await asyncio.to_thread(provenance, root, run)})

    async def panel_stream(request: Request) -> Response:
        from .panels import PANELS, check_fits, provenance

        name = request.path_params["name"]
        panel = PANELS.get(name)
        if panel is None or panel.stream is None:
            streams = ", ".join(p for p in PANELS if PANELS[p].stream)
            raise NotFound(f"there is no panel {name!r} that streams; {streams} do")
        run = run_folder(request)
        check_fits(panel, root, run)
        body = await request.body()
        pieces = panel.stream(run, dict(request.query_params), body)
        first = await asyncio.to_thread(next, pieces, None)       # bad settings are said here, before any event

        async def events():
            piece = first
            while piece is not None:
                if isinstance(piece, dict) and "view" in piece:    # a progress stream's answer says whose it is
                    piece = {**piece, "run": await asyncio.to_thread(provenance, root, run)}
                yield f"event: piece\ndata: {json.dumps(piece)}\n\n"
                if await request.is_disconnected():
                    pieces.close()
                    return
                piece = await asyncio.to_thread(next, pieces, None)
            yield "event: end\ndata: {}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in {p.name for p in STATIC.iterdir()}:
            raise NotFound(f"no static file {name!r}")
        return FileResponse(STATIC / name)

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, FieldError):
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
        if isinstance(exc, NotFound):
            return _error(404, str(exc), request)
        if isinstance(exc, UserError):
            return _error(400, str(exc), request)
        return _error(500, f"the lab could not answer this request ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:300]}); it goes on serving", request)

    routes = [Route("/", index), Route("/run", run_page), Route("/compare", compare), Route("/file", file),
              Route("/report", report), Route("/static/{name}", static), Route("/api/runs", api_runs),
              Route("/api/metrics", api_metrics), Route("/api/events", events), Route("/api/queue", api_queue),
              Route("/api/start", start, methods=["POST"]), Route("/api/stop", stop, methods=["POST"]),
              Route("/api/resume", resume, methods=["POST"]), Route("/api/input", image_input, methods=["POST"]),
              Route("/panel/{name}", panel_page), Route("/api/panel/{name}", panel_api, methods=["GET", "POST"]),
              Route("/api/stream/{name}", panel_stream, methods=["GET", "POST"])]
    app = Starlette(routes=routes, exception_handlers={Exception: on_error, UserError: on_error})
    app.state.queue, app.state.root = queue, root
    guarded = Limits(app, token)
    guarded.state = app.state          # tests reach the queue through the app they were given
    return guarded


def figure_entries(run: Path) -> list[dict]:
    """The run's figures in order with captions (their images are served as files, not embedded)."""
    index = run / "figures" / "figures.json"
    if index.is_file():
        try:
            entries = json.loads(index.read_text())
        except ValueError:
            entries = []
    else:
        entries = [{"name": p.stem, "caption": ""} for p in sorted((run / "figures").glob("*.png"))]
    return [{"name": e["name"], "caption": e.get("caption", ""), "label": e["name"].replace("_", " ")}
            for e in entries if (run / "figures" / f"{e['name']}.png").is_file()]


async def _json(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise UserError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise UserError("the request body must be a JSON object")
    return body


def _int(text, default: int) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


__all__ = ["COOKIE", "MAX_BODY", "create_app"]
