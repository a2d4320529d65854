"""The package's structure, read from its imports (ast; imports inside functions included): one shared base, the
paradigms side by side above it with only the arrows docs/architecture.md allows, the command line on top, and no
circle anywhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "paradigms"
DOC = ROOT / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imported(name: str, path: Path, source: str | None = None) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its file (``from . import x`` is the module x where x
    is one, else the package); ``source``: read this text instead of the file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES and "." in t:   # `import paradigms.data.images as x`: the module itself
                t = t.rsplit(".", 1)[0]
            if t in MODULES and t != name:
                out.add(t)
    return out


GRAPH = {name: imported(name, path) for name, path in MODULES.items()}


def package_of(module: str) -> str | None:
    """The sub-package a module belongs to (``paradigms.gan.recipe`` -> ``gan``), None for a top-level module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (SRC / parts[1]).is_dir()) else None


def plugin_names(package: str, field: str) -> list[str]:
    """What a package's plugin module names under ``field`` (RECIPES, HOOKS, COMMANDS), read without importing it."""
    path = SRC / package / "plugin.py"
    if not path.is_file():
        return []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == field for t in node.targets):
            value = ast.literal_eval(node.value)
            return [value] if isinstance(value, str) else list(value)
    return []


PACKAGES = sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").is_file())
PARADIGMS = [p for p in PACKAGES if plugin_names(p, "RECIPES") or plugin_names(p, "HOOKS")]
"""A paradigm is a package whose plugin brings recipes or hooks; every other package is shared machinery."""
CLI = ({"paradigms.cli", "paradigms.__main__"} | {m for p in PACKAGES for m in plugin_names(p, "COMMANDS")}
       | {m for m in MODULES for top in ("lab", "lecture") if m == f"paradigms.{top}" or m.startswith(f"paradigms.{top}.")})
"""The top floor: the command line, each package's commands, and the lab and the lecture beside them (they call the
library; the library never imports them)."""


def allowed_arrows() -> set[tuple[str, str]]:
    """The table of docs/architecture.md's section "Arrows between paradigms": | `from` | `to` | why |."""
    text = DOC.read_text()
    section = text.split("## Arrows between paradigms", 1)[1].split("\n## ", 1)[0]
    return {(a, b) for a, b in re.findall(r"^\|\s*`(\w+)`\s*\|\s*`(\w+)`\s*\|", section, re.M)}


def test_the_reading_found_the_package():
    assert {"supervised", "transfer", "adversarial", "contrastive", "language", "gan", "autoencoder",
            "mae"} <= set(PARADIGMS)
    assert {"data", "nets", "engine", "evaluate"} <= set(PACKAGES) - set(PARADIGMS)
    assert "paradigms.adversarial.commands" in CLI and "paradigms.language.commands" in CLI
    assert "paradigms.lab.server" in CLI and "lab" not in PARADIGMS
    assert "paradigms.lecture.build" in CLI and "paradigms.lecture.sections.01-backprop" in CLI
    # the reading sees imports inside functions, relative and absolute
    assert "paradigms.weights" in GRAPH["paradigms.language.corpus"]
    assert "paradigms.cli" in GRAPH["paradigms.adversarial.commands"]


def forbidden_arrows(graph) -> list[str]:
    allowed = allowed_arrows()
    return sorted(f"{m} -> {t}" for m, ts in graph.items() for t in ts
                  if package_of(m) in PARADIGMS and package_of(t) in PARADIGMS and package_of(m) != package_of(t)
                  and (package_of(m), package_of(t)) not in allowed)


def base_on_paradigms(graph) -> list[str]:
    return sorted(f"{m} -> {t}" for m, ts in graph.items() for t in ts
                  if package_of(m) not in PARADIGMS and m not in CLI and package_of(t) in PARADIGMS)


def library_on_cli(graph, sources) -> list[str]:
    bad = []
    for m, text in sources.items():
        if m in CLI:
            continue
        bad += [f"{m} -> {t}" for t in sorted(graph[m] & CLI)]
        tree = ast.parse(text)
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level}
        bad += [f"{m} -> typer"] if "typer" in names else []
    return bad


SOURCES = {m: p.read_text() for m, p in MODULES.items()}


def test_paradigms_import_each_other_only_where_the_architecture_allows():
    allowed = allowed_arrows()
    assert allowed, f"{DOC} lists no arrows between paradigms"
    assert all(a in PARADIGMS and b in PARADIGMS for a, b in allowed), f"an arrow names no paradigm: {allowed}"
    bad = forbidden_arrows(GRAPH)
    assert not bad, "imports between paradigms that docs/architecture.md does not allow:\n" + "\n".join(bad)


def test_the_shared_base_imports_no_paradigm():
    bad = base_on_paradigms(GRAPH)
    assert not bad, "base modules that import a paradigm:\n" + "\n".join(bad)


def test_no_library_module_imports_the_command_line():
    bad = library_on_cli(GRAPH, SOURCES)
    assert not bad, "library modules that import the command line:\n" + "\n".join(bad)


def test_each_check_catches_what_it_forbids():
    """The checks run on a package with one bad import added inside a function: each one fails."""
    name = "paradigms.mae.recipe"
    text = SOURCES[name] + "\n\ndef _bad():\n    from ..contrastive import losses\n    from .. import cli\n    import typer\n"
    graph = {**GRAPH, name: imported(name, MODULES[name], text)}
    assert "paradigms.mae.recipe -> paradigms.contrastive.losses" in forbidden_arrows(graph)
    assert {"paradigms.mae.recipe -> paradigms.cli", "paradigms.mae.recipe -> typer"} <= set(
        library_on_cli(graph, {**SOURCES, name: text}))
    base = "paradigms.evaluate.encoder"
    graph = {**GRAPH, base: GRAPH[base] | {"paradigms.transfer.core"}}
    assert base_on_paradigms(graph) == ["paradigms.evaluate.encoder -> paradigms.transfer.core"]
    assert cycles({**GRAPH, "paradigms.errors": {"paradigms.config"}})       # config imports errors


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each a circle of imports."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_circle_of_imports_anywhere():
    assert not cycles(GRAPH), f"circles of imports: {cycles(GRAPH)}"


@pytest.mark.parametrize("graph, circle", [({"a": {"b"}, "b": {"a"}}, True), ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
                                           ({"a": {"b"}, "b": {"c"}, "c": set()}, False)])
def test_the_circle_finder_finds_circles(graph, circle):
    assert bool(cycles(graph)) == circle


def test_a_hook_gives_its_section_to_the_recipe_it_extends_and_those_built_on_it():
    from paradigms import recipes
    from paradigms.adversarial.training import AdversarialConfig

    every = recipes.all_recipes()
    assert every["supervised"].Config.model_fields["adversarial"].annotation is AdversarialConfig
    assert "adversarial" in every["finetune"].Config.model_fields               # finetune is built on supervised
    assert "adversarial" not in every["simclr"].Config.model_fields
    assert not any(package_of(t) == "adversarial" for t in GRAPH["paradigms.supervised.classify"])  # never imported
