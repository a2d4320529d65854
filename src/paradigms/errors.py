"""One kind of error for bad input: the CLI prints its message on one line and exits with status 2.

Raise :class:`UserError` (or a subclass) wherever the user can fix the problem: a wrong name, a value
out of range, a missing or corrupt file. The message names the thing (file, field, value) and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input the user can fix. The CLI shows ``str(error)`` on one line and exits with status 2."""

    exit_code = 2


class DataError(UserError):
    """A data file is missing, corrupt, or cannot be fetched."""


class CheckpointError(UserError):
    """A checkpoint is corrupt, missing, or does not match the run's configuration."""


class NonFiniteLoss(UserError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""


class Diverged(UserError):
    """A recipe saw its training fail since step ``since`` (a GAN's discriminator winning outright): the engine
    keeps the last checkpoint from before that step, drops the later ones, and says so."""

    def __init__(self, message: str, since: int):
        super().__init__(message)
        self.since = since


def closest(name: str, choices: Iterable[str], n: int = 3) -> str:
    """A hint such as "did you mean 'mnist'?" (or the list of valid names when nothing is close)."""
    choices = sorted(set(choices))
    near = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    if near:
        return "did you mean " + " or ".join(repr(c) for c in near) + "?"
    return "valid names: " + ", ".join(choices)


def unknown(kind: str, name: str, choices: Iterable[str]) -> UserError:
    """The error for an unknown recipe, dataset, network, config key...: names it and the closest valid ones."""
    return UserError(f"unknown {kind} {name!r}; {closest(name, choices)}")


def make_folder(path, what: str = "output folder"):
    """``path`` created as a folder (and its parents), or one :class:`UserError` that says why it cannot be: a file
    in the way, a folder that cannot be written to. Returns it as a Path."""
    from pathlib import Path

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{what} {path}: a file of that name is in the way; choose another path") from None
    except NotADirectoryError:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        raise UserError(f"{what} {path}: {blocker} is a file, not a folder; choose another path") from None
    except OSError as e:
        raise UserError(f"{what} {path} cannot be created ({e.strerror or type(e).__name__}); choose a folder you "
                        "can write to") from None
    return path


def output_file(path, what: str = "output file"):
    """The parent folder of ``path`` created (see :func:`make_folder`), and ``path`` checked not to be a folder."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name, e.g. {path / 'out.png'}")
    make_folder(path.parent, f"the folder of {what}")
    return path
