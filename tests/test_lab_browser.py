"""The lab in a real browser (Playwright driving Debian's Chromium): the runs page, a run started from the form and
watched live, compare, a bad setting, and not one request leaving the lab's own address.

The lab runs in this process (uvicorn in a thread, on a free loopback port) over a runs folder holding two tiny runs
trained beforehand. The live curve is checked from inside the page: an init script wraps the page's ``EventSource``
(the lab's code is untouched and nothing new is exposed) and, on each ``metrics`` event the stream delivers, notes the
rows it carried, the run's state shown at that moment and whether the "loss" chart's pixels changed once lab.js drew
them (the wrapper's listener runs before lab.js's: it reads the canvas before and, a task later, after the redraw).

Its screenshots go to the test's temporary folder; with PARADIGMS_SCREENSHOTS=DIR the live run's page is also copied
to DIR/lab.png (docs/screenshots.sh makes the README's docs/lab.png so).

Skipped, saying why, when /usr/bin/chromium is absent or playwright, starlette or uvicorn cannot be imported (CI
installs Chromium). Never run ``playwright install``: the browser is the system's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from paradigms.engine import Trainer
from paradigms.engine.runlog import read_metrics

from .test_cli import error_line
from .test_engine import config
from .test_lab import wait_for

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
LIVE_RUN = ["train.epochs=150"]
"""The run started from the page: about 10 s of training on two idle cores (0.055 s an epoch on the 8x8 digits, an
evaluation every epoch), so its page opens while it trains and its stream has rows to deliver."""
TIMEOUT_MS = 180_000  # waits on the live run: generous, for a loaded machine; an idle one needs a tenth of it

try:
    import starlette  # noqa: F401
    import uvicorn
    from playwright.sync_api import sync_playwright
    MISSING = None
except ImportError as e:
    MISSING = f"{e.name} cannot be imported (pip install -e '.[test,lab]')"

pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=f"browser test: {MISSING}"),
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"browser test: no Chromium at {CHROMIUM} "
                                                      "(apt-get install chromium; CI installs it)"),
]

WATCH_LIVE = """
(() => {
  const Native = window.EventSource;
  const live = window.__live = {opened: 0, events: 0, rows: 0, steps: [], redrawn: 0, states: []};
  window.EventSource = class extends Native {
    constructor(url, options) {
      super(url, options);
      live.opened += 1; live.url = String(url);
      const canvas = () => document.querySelector('canvas[data-metric="loss"]');
      this.addEventListener("metrics", e => {
        const data = JSON.parse(e.data), before = canvas() ? canvas().toDataURL() : null;
        live.events += 1; live.rows += data.rows.length; live.steps.push(...data.rows.map(r => r.step));
        live.states.push(document.getElementById("state").textContent);
        setTimeout(() => { if (canvas() && canvas().toDataURL() !== before) live.redrawn += 1; }, 0);
      });
    }
  };
})();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def browsing(base: str, height: int = 900, init_script: str | None = None, local: tuple[str, ...] = ("data:",)):
    """A page of headless Chromium (Debian's, never a downloaded one), 1200 pixels wide; on leaving, without an
    error: no script error on the page, and every request it made went to the lab at ``base`` (or was ``local``:
    data, blob URLs)."""
    requests, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": height})
            context.on("request", lambda r: requests.append(r.url))
            if init_script:
                context.add_init_script(init_script)
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page
        finally:
            browser.close()
    assert not errors, errors
    lab = urlsplit(base)
    elsewhere = [u for u in requests if not u.startswith(local) and
                 (urlsplit(u).scheme, urlsplit(u).netloc) != (lab.scheme, lab.netloc)]
    assert requests and not elsewhere, elsewhere


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def serving(runs: Path):
    """The lab over ``runs`` on a free loopback port, in a thread of this process: (address, app)."""
    from paradigms.lab.server import create_app

    app = create_app(runs)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, name="lab-under-test", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(base + "/api/queue"), 30, every=0.1, what="the lab to answer")
        yield base, app
    finally:
        for job in app.state.queue.snapshot():      # a failed test leaves no training behind
            if job["state"] in ("running", "queued"):
                app.state.queue.stop(job["id"])
        server.should_exit = True
        thread.join(timeout=15)
        app.state.queue.close()


@pytest.fixture
def lab(tmp_path):
    """The lab over a runs folder holding two finished runs, ``a`` and ``b`` (lr 0.05)."""
    runs = tmp_path / "runs"
    for name, sets in (("a", []), ("b", ["optim.lr=0.05"])):
        cfg = config("supervised", ["train.epochs=1", "train_size=300", *sets])
        Trainer(cfg, runs / name, progress=False).fit()
    with serving(runs) as (base, app):
        yield base, runs, app


@pytest.fixture
def two_networks(tmp_path):
    """The lab over a standard LeNet-5 and one trained against PGD (eps 0.1, 5 steps), 30 epochs each on the digits:
    about 30 s of training on two cores."""
    runs = tmp_path / "runs"
    common = ["train.epochs=30", "train.figures=false"]
    Trainer(config("supervised", common), runs / "standard", progress=False).fit()
    Trainer(config("supervised", [*common, "adversarial.method=pgd", "adversarial.eps=0.1", "adversarial.steps=5"]),
            runs / "robust", progress=False).fit()
    with serving(runs) as (base, app):
        yield base, runs, app


def metric_names(run: Path) -> set[str]:
    """The charts lab.js draws for a run: one per metric of its train and eval rows (lr and bookkeeping aside)."""
    names = set()
    for row in read_metrics(run):
        if row.get("split") in ("train", "eval"):
            names |= {k.split("/")[-1] for k, v in row.items() if isinstance(v, (int, float))
                      and k not in ("step", "split", "epoch", "time_s") and k != "lr" and not k.startswith("lr_")}
    return names


def test_the_lab_in_a_browser(lab, tmp_path, capsys):
    base, runs, app = lab
    cli_error = error_line(capsys, "run", "supervised", "--set", "optim.lr=nan", "--out", str(tmp_path / "nan"))
    with browsing(base, height=900, init_script=WATCH_LIVE) as page:
        # the runs page lists the two runs; the form queues a third
        page.goto(base + "/")
        assert page.locator("#runs tbody tr[data-run]").count() == 2
        page.select_option("#start select[name=recipe]", "supervised")
        page.fill("#start textarea[name=sets]", "\n".join(LIVE_RUN))
        page.click("#start button[type=submit]")
        link = page.locator('#queue a[href^="/run?run=supervised-digits-"]')
        link.wait_for(timeout=10_000)
        run_id = unquote(link.get_attribute("href").split("run=", 1)[1])
        run = runs / run_id
        wait_for(lambda: (run / "config.yaml").is_file(), TIMEOUT_MS / 1000, every=0.1,
                 what=f"{run_id} to start training")

        # its page while it trains: the stream delivers new rows and the loss chart redraws with them
        link.click()
        page.wait_for_url("**/run?run=*")
        page.wait_for_function("document.getElementById('live').textContent !== ''", timeout=10_000)
        assert page.text_content("#live").startswith("live:"), (
            f"{run_id} ended before its page opened ({page.text_content('#live')!r}): make LIVE_RUN longer")
        page.wait_for_function("window.__live.redrawn >= 2", timeout=TIMEOUT_MS)
        live = page.evaluate("window.__live")
        assert live["opened"] == 1 and live["rows"] >= 1 and live["states"][0] == "running", live
        since = int(live["url"].rsplit("since=", 1)[1])      # the rows the page had before the stream
        logged = [row["step"] for row in read_metrics(run)]
        assert live["steps"] == logged[since:since + live["rows"]], (since, live, logged)
        page.screenshot(path=tmp_path / "run-live.png")

        # to its end: the stream says so and the page shows it finished, with its final metrics
        page.wait_for_function("document.getElementById('state').textContent === 'finished'",
                               timeout=TIMEOUT_MS)
        page.locator("text=Final metrics").wait_for(timeout=10_000)
        assert json.loads((run / "state.json").read_text())["state"] == "finished"
        wait_for(lambda: app.state.queue.snapshot()[0]["state"] != "running", 60, every=0.1,
                 what="the run's process to exit")
        assert app.state.queue.snapshot()[0]["state"] == "done"      # (state.json says finished just before)

        # back to the runs; two ticked, compared: one chart per metric, the differing setting highlighted
        page.goto(base + "/")
        assert page.locator("#runs tbody tr[data-run]").count() == 3
        page.screenshot(path=tmp_path / "runs.png", full_page=True)
        page.check('.pick[value="a"]')
        page.check('.pick[value="b"]')
        page.click("#compare")
        page.wait_for_url("**/compare?*")
        assert sorted(page.evaluate("window.LAB.runs")) == ["a", "b"]
        expected = metric_names(runs / "a") | metric_names(runs / "b")
        page.wait_for_function(f"document.querySelectorAll('#curves canvas').length === {len(expected)}")
        drawn = page.eval_on_selector_all("#curves canvas", "cs => cs.map(c => c.dataset.metric)")
        assert sorted(drawn) == sorted(expected) and len(expected) >= 2, (drawn, expected)
        differs = page.eval_on_selector_all("table.diff tr.differs", "rs => rs.map(r => r.cells[0].textContent)")
        assert "optim.lr" in differs, differs
        page.screenshot(path=tmp_path / "compare.png", full_page=True)

        # a bad setting: the command line's own message beside the settings field, nothing queued
        page.goto(base + "/")
        page.fill("#start textarea[name=sets]", "optim.lr=nan")
        page.click("#start button[type=submit]")
        message = page.locator('.field-error[data-field="sets"]')
        page.wait_for_function("document.querySelector('.field-error[data-field=\"sets\"]').textContent !== ''")
        assert "error: " + message.text_content() == cli_error
        assert len(app.state.queue.snapshot()) == 1
    if os.environ.get("PARADIGMS_SCREENSHOTS"):          # docs/screenshots.sh: the README's picture of the lab
        shutil.copyfile(tmp_path / "run-live.png", Path(os.environ["PARADIGMS_SCREENSHOTS"]) / "lab.png")


def flips(base: str, run: str, test: int, eps: float) -> bool:
    import httpx

    d = httpx.post(f"{base}/api/panel/attack", params={"run": run, "test": test, "eps": eps, "steps": 10}).json()
    return d["before"][0]["class"] != d["after"][0]["class"]


def test_the_panels_in_a_browser(two_networks, tmp_path):
    """A stroke drawn on the classify panel's canvas gets probabilities; the attack panel opened from an address with
    its state shows the standard and the robust network on the same picture, and moving the epsilon slider changes
    the adversarial image and the address; reopening that address gives the same inputs; nothing is fetched from
    another host. The picture: the first test image that PGD at eps 0.1 turns for the standard network and not for
    the robust one (the lecture's point, and the README's picture), else the first."""
    base, runs, app = two_networks
    shown_test = next((i for i in range(40) if flips(base, "standard", i, 0.1) and not flips(base, "robust", i, 0.1)),
                      0)
    with browsing(base, height=1000, local=("data:", "blob:")) as page:
        page.goto(base + "/panel/classify?run=standard")
        box = page.locator("#draw").bounding_box()
        page.mouse.move(box["x"] + 50, box["y"] + 50)
        page.mouse.down()
        page.mouse.move(box["x"] + 175, box["y"] + 50, steps=8)
        page.mouse.move(box["x"] + 95, box["y"] + 190, steps=8)
        page.mouse.up()
        page.locator('.answer[data-side="A"] .bars').wait_for(timeout=30_000)
        shown = page.eval_on_selector_all('.answer[data-side="A"] .bars .num',
                                          "ns => ns.map(n => parseFloat(n.textContent))")
        assert len(shown) == 10 and abs(sum(shown) - 100) < 1, shown
        page.locator("#mistakes figure").first.wait_for(timeout=30_000)
        page.screenshot(path=tmp_path / "classify.png", full_page=True)

        attacked = '.answer[data-side="A"] .trio figure:nth-child(3) img'
        page.goto(f"{base}/panel/attack?run=standard&b=robust&test={shown_test}&eps=0.02&method=pgd&steps=10")
        page.locator('.answer[data-side="B"] .trio').wait_for(timeout=30_000)
        page.locator(attacked).wait_for(timeout=30_000)
        before = page.get_attribute(attacked, "src")
        page.fill("input[name=eps]", "0.1")                         # the slider, moved
        page.wait_for_function(f"document.querySelector({json.dumps(attacked)}).src !== {json.dumps(before)}",
                               timeout=30_000)
        assert "eps=0.1" in page.url and "b=robust" in page.url
        page.wait_for_timeout(300)
        page.screenshot(path=tmp_path / "attack.png", full_page=True)

        page.goto(page.url)                                           # the address reopens the same view
        assert page.input_value("input[name=eps]") == "0.1" and page.input_value("select[name=b]") == "robust"
        assert page.input_value("input[name=test]") == str(shown_test)
        assert page.input_value("select[name=method]") == "pgd"
        page.locator('.answer[data-side="B"] .trio').wait_for(timeout=30_000)
    if os.environ.get("PARADIGMS_SCREENSHOTS"):
        shutil.copyfile(tmp_path / "attack.png", Path(os.environ["PARADIGMS_SCREENSHOTS"]) / "lab-attack.png")


@pytest.fixture
def two_gpts(tmp_path):
    """The lab over two GPTs on the standard library's text: tiny ones (20 steps) for the test; with
    PARADIGMS_SCREENSHOTS set, the quick preset's network trained 2 of its 8 epochs (500 steps, a few minutes), so
    that the README's picture reads as text."""
    from paradigms.api import run

    from .test_language import SETS

    runs = tmp_path / "runs"
    for name, seed in (("gpt-a", 0), ("gpt-b", 1)):
        if os.environ.get("PARADIGMS_SCREENSHOTS"):
            run("gpt", "stdlib", sets=["sample_tokens=0", "train.epochs=2"], seed=seed, out=runs / name)
        else:
            run("gpt", "stdlib", preset="none", sets=SETS + ["sample_tokens=0"], seed=seed, out=runs / name)
    with serving(runs) as (base, app):
        yield base, runs, app


def test_the_gpt_panel_streams_two_runs_in_a_browser(two_gpts, tmp_path):
    base, runs, app = two_gpts
    with browsing(base, height=900) as page:
        page.goto(f"{base}/panel/gpt?run=gpt-a&b=gpt-b&prompt=def%20&tokens=120&top_k=20")
        assert page.input_value("textarea[name=prompt]") == "def "
        page.locator('.answer[data-side="B"] table.tokens').wait_for(timeout=30_000)
        page.click("#go")
        for side in "AB":
            page.wait_for_function(
                f"(document.querySelector('.answer[data-side=\"{side}\"] pre.written') || {{}}).dataset?.state "
                "=== 'done'", timeout=60_000)
        written = page.eval_on_selector_all("pre.written", "ps => ps.map(p => p.textContent)")
        assert len(written) == 2 and all(w.startswith("def ") and len(w) > 60 for w in written), written
        page.fill("textarea[name=prompt]", "\u2603")                   # not in the vocabulary: said beside it
        page.wait_for_function("document.querySelector('.field-error[data-field=\"prompt\"]').textContent !== ''",
                               timeout=30_000)
        page.fill("textarea[name=prompt]", "def ")
        page.wait_for_function("document.querySelectorAll('.answer table.tokens').length === 2", timeout=30_000)
        assert page.text_content('.field-error[data-field="prompt"]') == ""
        page.click("#go")                                               # and write again, for the picture
        for side in "AB":
            page.wait_for_function(
                f"(document.querySelector('.answer[data-side=\"{side}\"] pre.written') || {{}}).dataset?.state "
                "=== 'done'", timeout=60_000)
        page.screenshot(path=tmp_path / "gpt.png", full_page=True)
    if os.environ.get("PARADIGMS_SCREENSHOTS"):
        shutil.copyfile(tmp_path / "gpt.png", Path(os.environ["PARADIGMS_SCREENSHOTS"]) / "lab-gpt.png")


def test_the_clip_and_gan_panels_in_a_browser(tmp_path):
    """Labels typed into the CLIP panel come back as ranked probabilities for a test image; the address keeps them.
    The GAN panel draws its grid and its walk, and draws them anew for another seed."""
    runs = tmp_path / "runs"
    Trainer(config("clip", ["train.epochs=1", "train_size=300", "train.figures=false"]), runs / "clip",
            progress=False).fit()
    Trainer(config("gan", ["train.epochs=1", "train.figures=false"]), runs / "gan", progress=False).fit()
    with serving(runs) as (base, app), browsing(base) as page:
        page.goto(f"{base}/panel/clip?run=clip&test=0")
        page.fill("input[name=labels]", "zero, one, two, three, four, five, six, seven, eight, nine")
        page.locator('.answer[data-side="A"] .bars').wait_for(timeout=30_000)
        names = page.eval_on_selector_all('.answer[data-side="A"] .bars > span:not(.num)',
                                          "s => s.map(x => x.textContent)")
        shown = page.eval_on_selector_all('.answer[data-side="A"] .bars .num',
                                          "ns => ns.map(n => parseFloat(n.textContent))")
        assert names[:3] == ["zero", "one", "two"] and len(shown) == 10 and abs(sum(shown) - 100) < 1
        top = page.text_content('.answer[data-side="A"] .prediction')
        assert shown[names.index(top)] == max(shown)
        assert "labels=zero" in page.url
        page.fill("input[name=labels]", "zero")
        page.wait_for_function("document.querySelector('.field-error[data-field=\"labels\"]').textContent"
                               ".includes('one label')", timeout=30_000)

        page.goto(f"{base}/panel/gan?run=gan&seed=2")
        page.locator('.answer[data-side="A"] img.walk').wait_for(timeout=30_000)
        grid = page.get_attribute('.answer[data-side="A"] img.grid', "src")
        page.fill("input[name=seed]", "5")
        page.wait_for_function(f"document.querySelector('.answer[data-side=\"A\"] img.grid').src !== "
                               f"{json.dumps(grid)}", timeout=30_000)
        assert "seed=5" in page.url


WATCH_PROGRESS = """
window.__progress = [];
new MutationObserver(() => {
  for (const p of document.querySelectorAll('.answer progress')) window.__progress.push(p.value / p.max);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_the_panels_built_on_view_blocks_in_a_browser(tmp_path, capsys):
    """Every panel these runs fit opens from an address with its state and answers; the patch follows the pointer
    dragged over the picture; certify shows its progress, then the smoothed prediction and its radius."""
    from .test_cli import run_cli

    runs = tmp_path / "runs"
    Trainer(config("supervised", ["train.epochs=5", "train.figures=false"]), runs / "a", progress=False).fit()
    code, out, _ = run_cli(capsys, "attack", str(runs / "a"), "--method", "patch", "--target", "3",
                           "--patch-steps", "20", "--n", "50")
    assert code == 0, out
    for recipe in ("autoencoder", "vae", "mae"):
        Trainer(config(recipe, ["train.epochs=1", "train_size=300", "train.figures=false"]), runs / recipe,
                progress=False).fit()
    pages = {"classify": "a&test=1", "augment": "a&test=1&transforms=rotate,+blur&strength=0.6&n=6",
             "attack": "a&test=1&eps=0.2", "patch": "a&test=1&px=0.2&py=0.2", "autoencoder": "autoencoder&test=2",
             "vae": "vae&z1=1.5&n=8", "mae": "mae&test=2&ratio=0.6"}
    with serving(runs) as (base, app), browsing(base, init_script=WATCH_PROGRESS) as page:
        for panel, state in pages.items():
            page.goto(f"{base}/panel/{panel}?run={state}")
            page.locator('.answer[data-side="A"] .provenance').wait_for(timeout=30_000)
            for key, value in (kv.split("=") for kv in state.split("&")[1:]):    # the inputs are the address's
                shown = page.input_value(f"[name={key}]")
                assert shown == value.replace("+", " "), (panel, key, shown)
            assert not page.text_content("#panel-error"), panel

        page.goto(f"{base}/panel/patch?run=a&test=1&px=0.2&py=0.2")
        picture = page.locator('.answer[data-side="A"] img.pick')
        picture.wait_for(timeout=30_000)
        before = picture.get_attribute("src")
        picture.scroll_into_view_if_needed()
        box = picture.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.8, steps=5)
        page.mouse.up()
        page.wait_for_function("location.search.includes('px=0.75') && location.search.includes('py=0.8')",
                               timeout=30_000)
        page.wait_for_function(f"document.querySelector('.answer[data-side=\"A\"] img.pick').src !== "
                               f"{json.dumps(before)}", timeout=30_000)

        page.goto(f"{base}/panel/certify?run=a&test=0&sigma=0.25&n=20000")
        page.click("#go")
        page.wait_for_function("document.querySelector('.answer[data-side=\"A\"]').textContent.includes('radius')",
                               timeout=60_000)
        seen = page.evaluate("window.__progress")
        assert any(0 < f < 1 for f in seen), seen[:5]
        answer = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"{base}/api/panel/certify?run=a&test=0&sigma=0.25&n=20000", method="POST")).read())
        text = page.text_content('.answer[data-side="A"]')
        assert (answer["prediction"] in text) and (f"{answer['radius']:.3f}" in text or answer["predict"] == -1), text
