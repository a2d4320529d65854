"""How a paradigm package joins the library: it brings its own recipes, hooks and commands.

Every sub-package of :mod:`paradigms` that has a ``plugin`` module is a plugin, and so is any
installed package that names one under the entry-point group ``paradigms.plugins``. A plugin module
names modules; it imports nothing itself, so the library can read it without the command line::

    # paradigms/contrastive/plugin.py
    RECIPES = ["paradigms.contrastive.simclr", ...]   # modules whose import registers recipes (@register)
    COMMANDS = "paradigms.contrastive.commands"       # a module with commands(app): sub-commands of `paradigms`

    # paradigms/adversarial/plugin.py
    HOOKS = ["paradigms.adversarial.training"]        # modules whose import registers hooks (@paradigms.hooks.register)

The library reads ``RECIPES`` and ``HOOKS`` (:func:`paradigms.recipes.all_recipes`); only the command line
(:mod:`paradigms.cli`) imports ``COMMANDS``. Adding a paradigm edits no central list.
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
