"""The lab: the user's runs in a browser, live, started and stopped there (``paradigms lab [RUNS_DIR]``).

It sits on the top floor beside the command line (docs/architecture.md): it calls the library (the run folders'
files, the configs, the engine's reports and results) and the library never imports it. :mod:`.server` is the web
app, :mod:`.runs` what it reads of the run folders, :mod:`.queue` the runs it starts as ``paradigms run``
subprocesses. Installed by the ``lab`` extra (Starlette and uvicorn).
"""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(root: Path, host: str = "127.0.0.1", port: int = 7860, token: str | None = None, echo=print) -> None:
    """Serve the lab over ``root`` until Ctrl-C. Any host but loopback needs a token: the one given, else a new one,
    printed in the address."""
    import uvicorn

    from ..errors import make_folder
    from .server import create_app

    root = make_folder(Path(root), "runs folder")
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(18)
    app = create_app(root, token)
    shown = f"[{host}]" if ":" in host else host
    echo(f"paradigms lab on {root.resolve()}: http://{shown}:{port}/" + (f"?token={token}" if token else ""))
    echo("Ctrl-C stops the lab (runs it started go on; a lab started again finds them)")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        app.state.queue.close()


__all__ = ["is_loopback", "serve"]
