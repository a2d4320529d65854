"""Lazy package exports (PEP 562): importing a package runs none of its submodules; each exported name is imported
the first time it is asked for. ``import paradigms.adversarial.plugin`` (what ``paradigms --help`` does for every
package) then costs nothing, while ``from paradigms.adversarial import fgsm`` works as an eager import would.

A package's ``__init__.py`` says once which submodule brings which name::

    from typing import TYPE_CHECKING

    from ..lazy import attach

    if TYPE_CHECKING:  # the same names, for type checkers, editors and tests/test_architecture.py's reading
        from .attacks import fgsm, pgd

    __getattr__, __dir__, __all__ = attach(__name__, {"attacks": ["fgsm", "pgd"]})

Only the package's own submodules can be named, so a lazy export never hides an import between packages.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping


def attach(package: str, exports: Mapping[str, Iterable[str]], modules: Iterable[str] = ()
           ) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for the package named ``package``.

    ``exports``: ``{submodule: names}``, each name an attribute of ``package.submodule``; ``modules``: submodules
    exported as themselves (``from paradigms.data import registry``). Any other submodule is still an attribute
    (``paradigms.adversarial.attacks``), imported when asked, as after an eager ``from .attacks import ...``.
    A resolved name is stored in the package, so it is looked up here only once.
    """
    where = {name: sub for sub, names in exports.items() for name in names}
    own = set(modules)
    for name in where.keys() & own:
        raise ValueError(f"{package}: {name!r} is named both as a submodule and as an export of {where[name]!r}")
    for sub in [*exports, *own]:
        if "." in sub or not sub.isidentifier():
            raise ValueError(f"{package}: {sub!r} is not a submodule name (only the package's own submodules)")
    names = sorted([*where, *own])

    def __getattr__(name: str):
        if name in where:
            value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        elif name in own or (not name.startswith("__") and name.isidentifier()
                             and importlib.util.find_spec(f"{package}.{name}") is not None):
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__, names
