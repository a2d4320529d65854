"""``paradigms lecture --fast``: every section's notebook executed against real runs, the document written from the
executed notebooks, every number traced to a run in claims.json; a second build reuses the runs; a number changed in
a run shows in the rebuilt document; a section that cannot be built says why while the others build."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

pytest.importorskip("nbclient")
pytest.importorskip("jupytext")

from paradigms.engine.runlog import read_metrics  # noqa: E402
from paradigms.lecture.build import build, sections, select  # noqa: E402

from .test_cli import run_cli  # noqa: E402


@pytest.fixture(scope="module")
def lecture(tmp_path_factory):
    """The whole lecture built with --fast, once, through the command line's function; and how long it took."""
    root = tmp_path_factory.mktemp("lecture")
    lines = []
    t0 = time.monotonic()
    result = build(root / "out", root / "runs", fast=True, echo=lines.append)
    return {"root": root, "result": result, "lines": lines, "seconds": time.monotonic() - t0}


def test_every_section_builds_with_its_notebook_and_every_number_is_traced(lecture):
    result, out = lecture["result"], lecture["root"] / "out"
    assert result["failed"] == [], [line for line in lecture["lines"] if "FAILED" in line]
    assert result["sections"] == [s.name for s in sections()]
    page = (out / "index.html").read_text()
    for s in sections():
        assert f'id="{s.name}"' in page
        nb = json.loads((out / "notebooks" / f"{s.name}.ipynb").read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c.get("execution_count") for c in code)                  # ran, top to bottom
        assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    claims = json.loads((out / "claims.json").read_text())
    assert claims and {c["section"] for c in claims} == {s.name for s in sections()}
    for c in claims:
        assert Path(c["run"]).is_dir() and len(c["sha256"] or "") == 64, c
        if c["source"] == "metrics.jsonl":                                           # the very number the run logged
            logged = [r[c["key"]] for r in read_metrics(Path(c["run"])) if c["key"] in r]
            assert logged and logged[-1] == pytest.approx(c["value"])
        assert c["text"] in page                                                     # and the document shows it
    shown = re.findall(r'<span class="claim" title="([^"]+)"', page)
    assert len(shown) >= len(claims) // 2 and all("checkpoint sha256" in t for t in shown)
    tour = [line for line in lecture["lines"] if line.startswith("paradigm ")]
    assert tour, "the quick tour's table ends the output"


def test_a_second_build_reuses_the_runs_and_a_changed_number_shows(lecture):
    root = lecture["root"]
    claims = json.loads((root / "out" / "claims.json").read_text())
    first = next(c for c in claims if c["section"].startswith("01-") and c["key"] == "test/acc")
    metrics = Path(first["run"]) / "metrics.jsonl"
    rows = metrics.read_text().splitlines()
    last = json.loads(rows[-1])
    last["test/acc"] = 0.1234
    metrics.write_text("\n".join([*rows[:-1], json.dumps(last)]) + "\n")
    runs_before = sorted(p.name for p in (root / "runs").iterdir())
    t0 = time.monotonic()
    lines = []
    again = build(root / "again", root / "runs", fast=True, only="1,6", echo=lines.append)   # the same runs
    assert again["failed"] == [] and time.monotonic() - t0 < 60                     # nothing trained again
    said = {s: next(line for line in lines if line.startswith(f"[{k}/2]") and " in " in line and "cell" not in line)
            for k, s in ((1, "01"), (2, "06"))}
    assert "reused (nothing it reads has changed)" in said["06"]                  # its notebook, not executed again
    assert ": built in" in said["01"]                                             # one of its runs changed: executed
    assert sorted(p.name for p in (root / "runs").iterdir()) == runs_before
    rebuilt = json.loads((root / "again" / "claims.json").read_text())
    changed = next(c for c in rebuilt if c["run"] == first["run"] and c["key"] == "test/acc")
    assert changed["value"] == pytest.approx(0.1234) and changed["text"] == "12.3%"
    assert "12.3%" in (root / "again" / "index.html").read_text()


def test_a_section_without_its_data_says_so_and_the_command_line_says_it_too(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PARADIGMS_OFFLINE", "1")                                    # no download tried
    empty = tmp_path / "no-data"
    empty.mkdir()
    code, out, err = run_cli(capsys, "lecture", "--only", "1", "--out", str(tmp_path / "out"), "--runs",
                             str(tmp_path / "runs"), "--data-dir", str(empty))
    assert code == 1 and "not built: 01-backprop" in err
    page = (tmp_path / "out" / "index.html").read_text()
    assert "could not be built" in page and "mnist" in page.lower()


def test_only_names_sections_by_number_or_name():
    assert [s.number for s in select("3,backprop")] == [1, 3]
    with pytest.raises(Exception, match="no section 'nope'; the sections are 1 \\(backprop\\)"):
        select("nope")


def test_the_document_in_a_browser_loads_every_picture_and_nothing_from_elsewhere(lecture):
    """Headless Chromium (Debian's) opens index.html from its folder: every section there, every picture loaded, no
    script error, no request outside the document's folder."""
    from .test_lab_browser import ARGS, CHROMIUM, MISSING

    if MISSING or not CHROMIUM.is_file():
        pytest.skip(f"browser test: {MISSING or f'no Chromium at {CHROMIUM}'}")
    from playwright.sync_api import sync_playwright

    out = (lecture["root"] / "out").resolve()
    requests, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto((out / "index.html").as_uri())
            ids = page.eval_on_selector_all("section.lecture", "s => s.map(x => x.id)")
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            hover = page.get_attribute("span.claim", "title")
        finally:
            browser.close()
    assert ids == [s.name for s in sections()]
    assert widths and all(w > 0 for w in widths), widths
    assert not errors, errors
    assert requests and all(u.startswith(out.as_uri()) for u in requests), [u for u in requests
                                                                            if not u.startswith(out.as_uri())]
    assert "metrics.jsonl" in hover and "checkpoint sha256" in hover
