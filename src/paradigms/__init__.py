"""paradigms: every way a deep network learns, as tested, comparable recipes on one engine.

    import paradigms
    result = paradigms.run("supervised", dataset="digits")   # train a recipe (the CLI's `paradigms run`)
    net = paradigms.load(result.run_dir)                     # any run's trained network, on [0, 1] pixels
    paradigms.Trainer                                        # the engine, for your own Recipe subclass
    paradigms.transfer.transfer(my_net, result.run_dir, "freeze:2")   # a run's weights into your own module
"""

__version__ = "0.1.0"

_LAZY = {"load": ("paradigms.api", "load"), "run": ("paradigms.api", "run"), "RunResult": ("paradigms.api", "RunResult"),
         "Trainer": ("paradigms.engine", "Trainer"), "transfer": ("paradigms.transfer", None)}

__all__ = ["RunResult", "Trainer", "__version__", "load", "run", "transfer"]


def __getattr__(name: str):
    """Import torch and the rest only when asked (``paradigms --help`` stays quick)."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return importlib.import_module(module) if attr is None else getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'paradigms' has no attribute {name!r}")
