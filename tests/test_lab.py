"""The lab over HTTP (an in-process client, real tiny runs on the embedded digits): the runs list, a run's page,
compare, start / queue / stop / resume, and what a shared machine needs (token, Host, paths, body size, bad input)."""

from __future__ import annotations

import io
import json
import shutil
import time

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from paradigms.engine import Trainer  # noqa: E402
from paradigms.lab.server import MAX_BODY, create_app  # noqa: E402

from .test_cli import error_line  # noqa: E402
from .test_engine import config  # noqa: E402

TINY = ["train.epochs=1", "train_size=300"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A runs folder: two finished runs (one nested a level down) that differ in their learning rate."""
    root = tmp_path_factory.mktemp("runs")
    Trainer(config("supervised", TINY), root / "a", progress=False).fit()
    Trainer(config("supervised", [*TINY, "optim.lr=0.05"]), root / "group" / "b", progress=False).fit()
    return root


@pytest.fixture
def lab(runs):
    app = create_app(runs)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client
    app.state.queue.close()


def wait_for(fn, timeout=120.0, every=0.2, what="it"):
    """``fn()``'s first true value, asked every ``every`` s; an AssertionError after ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = fn()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


# -- what it shows ----------------------------------------------------------------------------------------------------
def test_the_runs_list_finds_every_run_nested_ones_too(lab):
    listed = {r["id"]: r for r in lab.get("/api/runs").json()}
    assert set(listed) == {"a", "group/b"}
    assert all(r["state"] == "finished" and r["recipe"] == "supervised" and r["dataset"] == "digits"
               for r in listed.values())
    assert listed["a"]["metric"] == "test/acc" and 0 < listed["a"]["value"] <= 1
    page = lab.get("/").text
    assert 'href="/run?run=group/b"' in page and "Start a run" in page


def test_a_run_page_shows_its_metrics_figures_checkpoint_and_how_to_reproduce_it(lab, runs):
    page = lab.get("/run", params={"run": "a"}).text
    pointer = json.loads((runs / "a" / "checkpoints" / "latest.json").read_text())
    assert all(sha in page for sha in pointer["sha256"].values())
    assert f"paradigms run supervised --config {runs / 'a' / 'config.yaml'}" in page
    assert "test/acc" in page and "/report?run=a" in page and 'id="curves"' in page
    assert 'src="/file?run=a&amp;path=figures/confusion.png"' in page and "Confusion matrix" in page
    rows = lab.get("/api/metrics", params={"run": "a"}).json()
    assert rows["state"] == "finished" and rows["rows"][-1]["split"] == "final"
    assert lab.get("/api/metrics", params={"run": "a", "since": rows["next"]}).json()["rows"] == []
    assert lab.get("/report", params={"run": "a"}).text.startswith("<!doctype html>")
    png = lab.get("/file", params={"run": "a", "path": "figures/confusion.png"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"


def test_compare_puts_runs_side_by_side_and_marks_what_differs(lab):
    page = lab.get("/compare", params=[("run", "a"), ("run", "group/b")]).text
    row = next(r for r in page.split("<tr") if "<td>optim.lr</td>" in r)
    assert 'class="differs"' in row and "0.05" in row
    same = next(r for r in page.split("<tr") if "<td>optim.name</td>" in r)
    assert "differs" not in same
    assert "compare needs two runs" in lab.get("/compare", params={"run": "a"}).text


def test_the_metrics_cache_reads_what_was_added_and_starts_again_on_a_rewritten_file(tmp_path):
    from paradigms.engine.runlog import read_metrics
    from paradigms.lab.runs import MetricsCache

    run, cache = tmp_path / "r", MetricsCache()
    run.mkdir()
    assert cache.rows(run) == [] and cache.json_rows(run) == ("[]", 0)        # no metrics.jsonl yet
    metrics = run / "metrics.jsonl"
    metrics.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')                 # the second line half-written
    assert cache.rows(run) == [{"step": 1, "loss": 2.0}]
    with open(metrics, "a") as f:
        f.write('ss": NaN}\n{"step": 3, "loss": 1.5}\n')
    assert [r["step"] for r in cache.rows(run)] == [1, 2, 3] == [r["step"] for r in read_metrics(run)]
    text, count = cache.json_rows(run, since=1)
    assert count == 3 and json.loads(text) == [{"step": 2, "loss": None}, {"step": 3, "loss": 1.5}]  # JSON: no NaN
    metrics.with_name("new").write_text('{"step": 1, "loss": 9.0}\n')             # a resume rewrites the file
    metrics.with_name("new").replace(metrics)
    assert cache.rows(run) == [{"step": 1, "loss": 9.0}]
    metrics.write_text('{"step": 7}\n')                                            # cut shorter in place
    assert cache.rows(run) == [{"step": 7}]


def test_events_stream_the_metrics_and_end_with_a_finished_run(lab):
    with lab.stream("GET", "/api/events", params={"run": "a"}) as response:
        text = "".join(response.iter_text())
    assert "event: metrics" in text and '"split": "final"' in text and "event: end" in text


# -- starting, stopping, resuming ---------------------------------------------------------------------------------------
def test_a_bad_request_is_shown_beside_its_field_with_the_cli_s_message(lab):
    def start(**body):
        return lab.post("/api/start", json={"recipe": "supervised", **body})

    r = lab.post("/api/start", json={"recipe": "supervisd"})
    assert r.status_code == 400 and r.json() == {"field": "recipe",
                                                 "error": "unknown recipe 'supervisd'; did you mean 'supervised'?"}
    r = start(sets="optim.lr=nan")
    assert r.json()["field"] == "sets" and "must be a finite number" in r.json()["error"]
    assert start(sets="optim.lrr=1").json()["error"].startswith("unknown config key 'optim.lrr'")
    assert start(dataset="mnistt").json()["field"] == "dataset"
    assert start(sets="--out=/etc").json()["field"] == "sets"              # an option is not a setting
    assert start(seed="x").json()["field"] == "seed"
    assert lab.get("/api/queue").json() == []                               # nothing bad was queued


def test_runs_queue_one_at_a_time_and_a_stopped_run_resumes_to_the_same_metrics(runs, tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    # 1,200 steps (some 5 s in a subprocess here): stopped at its first checkpoint, a second in (some 260 steps), it
    # is still seconds from its end when the stop lands
    long = ["train.epochs=100", "train.eval_every=0", "train.checkpoint_every_s=1", "train.figures=false"]
    app = create_app(root)
    with TestClient(app, base_url="http://127.0.0.1") as lab:
        first = lab.post("/api/start", json={"recipe": "supervised", "sets": "\n".join(long)}).json()
        second = lab.post("/api/start", json={"recipe": "supervised", "sets": "train.epochs=1"}).json()
        assert first["state"] == second["state"] == "queued"
        wait_for(lambda: lab.get("/api/queue").json()[0]["state"] == "running")
        assert lab.get("/api/queue").json()[1]["state"] == "queued"           # waits for the first
        run = root / first["run"]
        wait_for(lambda: (run / "checkpoints" / "latest.json").is_file())
        lab.post("/api/stop", json={"job": first["job"]})
        wait_for(lambda: lab.get("/api/queue").json()[0]["state"] == "stopped")
        listed = {r["id"]: r for r in lab.get("/api/runs").json()}
        assert listed[first["run"]]["state"] == "interrupted"
        assert not (run / "final.json").exists()
        wait_for(lambda: lab.get("/api/queue").json()[1]["state"] == "done")   # the queued one ran next
        assert lab.post("/api/resume", json={"run": first["run"]}).json()["state"] == "queued"
        assert "already queued" in lab.post("/api/resume", json={"run": first["run"]}).json()["error"]
        wait_for(lambda: lab.get("/api/queue").json()[2]["state"] == "done", timeout=180)
        assert "finished: only an interrupted run" in lab.post("/api/resume", json={"run": first["run"]}).json()["error"]
    app.state.queue.close()
    resumed = json.loads((run / "final.json").read_text())
    straight = Trainer(config("supervised", long), tmp_path / "straight", progress=False).fit()
    assert {k: resumed[k] for k in straight} == straight                     # the same seed, the same metrics


def test_a_restarted_lab_finds_its_queue_and_a_run_still_alive_shown_running(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    app = create_app(root)
    lab = TestClient(app, base_url="http://127.0.0.1")
    job = lab.post("/api/start", json={"recipe": "supervised",
                                       "sets": "train.epochs=100\ntrain.eval_every=0\ntrain.figures=false"}).json()
    queued = lab.post("/api/start", json={"recipe": "supervised", "sets": "train.epochs=1"}).json()
    wait_for(lambda: lab.get("/api/queue").json()[0]["state"] == "running")
    app.state.queue.close()                                                   # the lab stops; its run goes on
    again = create_app(root)
    with TestClient(again, base_url="http://127.0.0.1") as lab2:
        jobs = lab2.get("/api/queue").json()
        assert [j["state"] for j in jobs] == ["running", "queued"] and jobs[0]["pid"]
        wait_for(lambda: {r["id"]: r["state"] for r in lab2.get("/api/runs").json()}.get(job["run"]) == "running")
        wait_for(lambda: [j["state"] for j in lab2.get("/api/queue").json()] == ["done", "done"], timeout=240)
        assert (root / queued["run"] / "final.json").is_file()
    again.state.queue.close()


# -- a shared machine -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("run, path", [
    ("../a", "config.yaml"), ("%2e%2e/a", "config.yaml"), ("a", "../a/config.yaml"), ("a", "..%2fconfig.yaml"),
    ("a", "/etc/passwd"), ("/etc", "passwd"), ("a", "checkpoints/../../../etc/passwd"), ("a", "C:/windows"),
    ("a", "leak/secret.txt"), ("leaky", "secret.txt")])
def test_no_file_is_served_from_outside_the_runs_folder(runs, tmp_path, run, path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s3cr3t-c0ntent")
    (outside / "config.yaml").write_text("recipe: supervised\n")
    for link, target in ((runs / "a" / "leak", outside), (runs / "leaky", outside)):
        if not link.is_symlink():
            link.symlink_to(target)
    app = create_app(runs)
    with TestClient(app, base_url="http://127.0.0.1") as lab:
        r = lab.get(f"/file?run={run}&path={path}")
        assert r.status_code == 404 and "s3cr3t-c0ntent" not in r.text and "root:" not in r.text
        if run != "a":                                          # a run named from outside: no page either
            assert lab.get(f"/run?run={run}").status_code == 404
    app.state.queue.close()
    for link in (runs / "a" / "leak", runs / "leaky"):
        link.unlink()


def test_a_token_guards_every_request_and_a_foreign_host_is_refused_without_one(runs):
    app = create_app(runs, token="s3cret")
    with TestClient(app, base_url="http://10.0.0.5") as lab:
        for url in ("/", "/api/runs", "/run?run=a", "/file?run=a&path=config.yaml"):
            r = lab.get(url)
            assert r.status_code == 401 and "test/acc" not in r.text and "recipe" not in r.text
        assert lab.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert lab.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        first = lab.get("/?token=s3cret")                       # the printed address: a cookie for the page's requests
        assert first.status_code == 200 and "paradigms_lab_token=s3cret" in first.headers["set-cookie"]
        assert lab.get("/api/runs").status_code == 200          # the cookie now carries it
    app.state.queue.close()
    app = create_app(runs)                                      # no token: loopback names only (no DNS rebinding)
    with TestClient(app, base_url="http://evil.example") as lab:
        r = lab.get("/api/runs")
        assert r.status_code == 403 and "group/b" not in r.text
    app.state.queue.close()


def test_bad_requests_get_messages_and_the_lab_goes_on_serving(lab):
    big = lab.post("/api/start", content=b"x" * (MAX_BODY + 1), headers={"Content-Type": "application/json"})
    assert big.status_code == 413 and "at most" in big.json()["error"]
    from PIL import Image

    png = io.BytesIO()
    Image.new("L", (40, 40), 200).save(png, format="PNG")
    ok = lab.post("/api/input", params={"run": "a"}, content=png.getvalue())
    assert ok.status_code == 200 and ok.json()["shape"] == [1, 8, 8] and ok.json()["png"].startswith("data:image/png")
    bad = [lab.post("/api/input", params={"run": "a"}, content=png.getvalue()[:60]),        # a cut PNG
           lab.post("/api/input", params={"run": "a"}, content=b"GIF89a not really"),
           lab.post("/api/input", params={"run": "a"}, content=b""),
           lab.post("/api/start", content=b"{not json"),
           lab.post("/api/start", json=["a", "list"]),
           lab.get("/run", params={"run": "nope"}), lab.get("/run"), lab.get("/file", params={"run": "a"}),
           lab.get("/static/../server.py"), lab.post("/api/stop", json={"job": 99}),
           lab.post("/api/resume", json={"run": "a"}), lab.get("/no/such/page")]
    assert [r.status_code for r in bad] == [400, 400, 400, 400, 400, 404, 404, 404, 404, 400, 400, 404]
    assert all("Traceback" not in r.text for r in bad)
    assert "damaged or cut short" in bad[0].json()["error"]
    for _ in range(50):
        assert lab.get("/run", params={"run": "../../etc"}).status_code == 404
    assert lab.get("/api/runs").status_code == 200             # still serving


def test_an_image_too_large_in_pixels_is_refused_before_it_is_decoded(lab):
    from PIL import Image

    png = io.BytesIO()
    Image.new("1", (5000, 5000)).save(png, format="PNG")       # small in bytes, 25 megapixels
    r = lab.post("/api/input", params={"run": "a"}, content=png.getvalue())
    assert r.status_code == 400 and "at most 16,777,216 pixels" in r.json()["error"]


def test_the_lab_command_without_its_extra_says_how_to_install_it(capsys, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_uvicorn(name, *args, **kwargs):
        if name == "uvicorn":
            raise ImportError("no module named uvicorn")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvicorn)
    assert "pip install -e '.[lab]'" in error_line(capsys, "lab", "runs")


def test_a_report_says_how_to_open_its_run_in_the_lab(runs):
    page = (runs / "a" / "report.html").read_text()
    assert f"paradigms lab {runs}, then open the run a" in page


@pytest.fixture(autouse=True)
def _no_leftover_links(runs):
    yield
    for link in (runs / "a" / "leak", runs / "leaky"):
        if link.is_symlink():
            link.unlink()
    shutil.rmtree(runs / ".lab", ignore_errors=True)
