"""How a paradigm package joins the library: it brings its own recipes and commands.

Every sub-package of :mod:`paradigms` that has a ``plugin`` module is a plugin, and so is any
installed package that names one under the entry-point group ``paradigms.plugins``::

    # paradigms/adversarial/plugin.py
    RECIPES = ["paradigms.adversarial.recipe"]     # modules whose import registers recipes (@register)

    def commands(app) -> None:                      # optional: sub-commands of `paradigms`
        app.command("attack")(attack)

Adding a paradigm edits no central list.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from functools import cache
from importlib.metadata import entry_points
from types import ModuleType


@cache
def plugins() -> tuple[ModuleType, ...]:
    """The plugin modules, the package's own first (in name order), then installed ones."""
    import paradigms

    found = []
    for info in sorted(pkgutil.iter_modules(paradigms.__path__), key=lambda i: i.name):
        if info.ispkg and importlib.util.find_spec(f"paradigms.{info.name}.plugin") is not None:
            found.append(importlib.import_module(f"paradigms.{info.name}.plugin"))
    for ep in sorted(entry_points(group="paradigms.plugins"), key=lambda e: e.name):
        found.append(ep.load())
    return tuple(found)
