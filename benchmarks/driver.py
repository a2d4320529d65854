"""The one main() of the benchmark scripts (benchmarks/bench_NAME.py): their shared command line, the data check,
the run cache and the writing of their block of BENCHMARKS.md; each script keeps only its study."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from runs import Runs
from sections import run_sections, write_section


def name_list(text: str) -> list[str]:
    """An option's type: comma-separated names, "a, b," -> ["a", "b"]."""
    return [x.strip() for x in text.split(",") if x.strip()]


def number_list(text: str) -> list[int]:
    """An option's type: comma-separated whole numbers, "0,1,2" -> [0, 1, 2]."""
    return [int(x) for x in text.split(",")]


def require_data(data_dir, folder: str = "mnist") -> None:
    """Stop with one line unless ``data_dir`` holds the shared datasets (``folder`` at least)."""
    if not (data_dir and Path(data_dir, folder).is_dir()):
        raise SystemExit(f"--data-dir {data_dir!r} has no {folder}/: give the shared datasets folder "
                         "(../shared/datasets)")


def run_benchmark(script: str, study, *, options=None, sections: str | None = None, sections_help: str | None = None,
                  title: str = "", kept: str = "networks", part_arguments=None, footer: tuple[str, ...] = (),
                  name=None, data="mnist", work: bool = True, work_help: str | None = None, flags=None,
                  keep=lambda key: True) -> None:
    """The main() of a benchmark script: parse its command line, check the data, write its block of BENCHMARKS.md.

    A benchmark script provides:

    - ``script``: its ``__file__``. NAME, ``name`` or else the file's name without ``bench_``, names its block
      (between ``<!-- bench:NAME:begin -->`` and ``<!-- bench:NAME:end -->``), its target ``make bench-NAME`` and
      its default ``--work``, runs/bench-NAME;
    - ``options(parser)``: adds its own options to the common ``--data-dir`` (default $PARADIGMS_DATA), ``--out``
      (BENCHMARKS.md), ``--work`` (none if ``work`` is False; ``work_help`` its help) and ``--sections``;
    - ``study(args, runs)``, ``runs`` the :class:`runs.Runs` on ``--work`` (``flags`` beside data_dir; ``keep``: the
      runs whose folders stay), None without ``--work``. Sectioned (``sections``, the default of ``--sections``;
      ``sections_help``), it returns the parts, ``{part: function returning its lines}``, which
      :func:`sections.run_sections` runs and writes under the header "## ``title``" and the study's command
      (``kept``: what ``--work`` keeps), each followed by its time and ``--sections PART`` with the part's own
      options (``part_arguments(args)``, a dict), then ``footer``. Whole (no ``sections``), it runs everything
      and returns the block's lines, header included;
    - ``data``: the folder ``--data-dir`` must hold (None: no check); ``--data-dir`` is then made absolute.

    ``name``, ``data`` and ``flags`` may be functions of the parsed arguments; PARADIGMS_PROGRESS defaults to 0.
    """
    known = None if callable(name) else name or Path(script).stem.removeprefix("bench_")  # before parsing
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.environ.get("PARADIGMS_DATA"))
    ap.add_argument("--out", default="BENCHMARKS.md")
    if work:
        ap.add_argument("--work", default=known and f"runs/bench-{known}", help=work_help)
    if sections is not None:
        ap.add_argument("--sections", default=sections, help=sections_help)
    if options:
        options(ap)
    args = ap.parse_args()
    os.environ.setdefault("PARADIGMS_PROGRESS", "0")
    name = known or name(args)
    if _value(data, args):
        require_data(args.data_dir, _value(data, args))
    if args.data_dir:
        args.data_dir = str(Path(args.data_dir).resolve())
    runs = None
    if work:
        args.work = args.work or f"runs/bench-{name}"
        runs = Runs(Path(args.work), {"data_dir": args.data_dir, **(_value(flags, args) or {})}, keep=keep)
    begin, end, out = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->", Path(args.out)
    if sections is None:
        write_section(out, begin, end, "\n".join([begin, *study(args, runs), end]) + "\n")
        print(f"wrote {args.out}")
        return
    script = Path(script).name
    header = [f"## {title}", "", f"Command: `make bench-{name}` (`python benchmarks/{script} --data-dir "
              f"../shared/datasets`); {kept} are kept in `{args.work}`.", ""]
    own = _value(part_arguments, args) or {}
    run_sections(study(args, runs), name_list(args.sections), runs.work, out, begin, end, header,
                 command=lambda part: f"--sections {part} {own[part]}" if part in own else f"--sections {part}",
                 footer=footer, script=script)


def _value(x, args):
    """``x``, or what it gives for the parsed arguments if it is a function."""
    return x(args) if callable(x) else x
