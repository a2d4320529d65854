"""paradigms: every way a deep network learns, as tested, comparable recipes on one engine."""

__version__ = "0.1.0"
