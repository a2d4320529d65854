"""Character-level text datasets: :class:`TextData` and the readers of ``stdlib`` (Python's own
sources, no download), ``tinyshakespeare`` (under the data root, checked by sha256) and
``textfile:PATH``. ``load_text(name)`` looks the name up in :mod:`.registry` and calls its reader."""

from __future__ import annotations

import os
import sysconfig
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from paradigms.data import registry
from paradigms.data.root import require
from paradigms.data.tokenize import CharTokenizer
from paradigms.errors import DataError, UserError

STDLIB_CHARS = 2_000_000
"""How many characters of the standard library's sources ``stdlib`` keeps."""

VAL_FRACTION = 0.1

_SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "__pycache__"}


@dataclass(repr=False)
class TextData:
    """A text and its split (first 90% train, last 10% val), with a character vocabulary.

    ``vocab`` is the sorted list of distinct characters of ``text``; ``encode`` maps a string to an
    int64 tensor of vocabulary indices and ``decode`` maps indices back to a string.
    """

    name: str
    text: str
    train: str | None = None
    val: str | None = None
    vocab: list[str] = field(init=False)

    def __post_init__(self) -> None:
        if self.train is None or self.val is None:
            cut = int(len(self.text) * (1 - VAL_FRACTION))
            self.train, self.val = self.text[:cut], self.text[cut:]
        self.tokenizer = CharTokenizer.train(self.text, name=f"text dataset {self.name!r}")
        self.vocab = self.tokenizer.chars

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, s: str) -> torch.Tensor:
        """The vocabulary indices of ``s`` (int64, shape (len(s),))."""
        return self.tokenizer.encode(s)

    def decode(self, ids) -> str:
        """The string for a sequence of vocabulary indices (tensor, array or list)."""
        return self.tokenizer.decode(ids)

    def __repr__(self) -> str:
        return (f"TextData({self.name!r}, {len(self.text):,} chars: {len(self.train):,} train / "
                f"{len(self.val):,} val, vocab {self.vocab_size})")


@lru_cache(maxsize=1)
def _stdlib_text(limit: int = STDLIB_CHARS) -> str:
    """The first ``limit`` characters of the standard library's ``.py`` files, concatenated.

    Files come in a sorted walk (a folder's files in name order, then its sub-folders in name
    order), skipping site-packages, test folders and files that are not valid UTF-8.
    """
    top = sysconfig.get_paths()["stdlib"]
    parts: list[str] = []
    total = 0
    for root, dirs, names in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for n in sorted(names):
            if not n.endswith(".py"):
                continue
            try:
                s = Path(root, n).read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if not s:
                continue
            if not s.endswith("\n"):
                s += "\n"
            parts.append(s)
            total += len(s)
            if total >= limit:
                return "".join(parts)[:limit]
    text = "".join(parts)
    if not text:
        raise DataError(f"no Python sources found under {top} for the 'stdlib' text dataset; "
                        "use tinyshakespeare or textfile:PATH instead")
    return text


def load_text(name: str, data_dir: str | os.PathLike[str] | None = None) -> TextData:
    """Load a text dataset by name (see :data:`TEXT_DATASETS`, or ``textfile:PATH``).

    ``data_dir`` chooses the data root for ``tinyshakespeare``; ``stdlib`` and ``textfile:`` never
    touch it.
    """
    info = registry.lookup(name, "text")
    read = info.reader_function()
    return read(name if info.pattern else info.name, data_dir)


# ---------------------------------------------------------------------------------------------
# the readers named in the registry: read(name, data_dir) -> TextData


def read_stdlib(name, data_dir) -> TextData:
    """The first :data:`STDLIB_CHARS` characters of the standard library's sources."""
    return TextData(name, _stdlib_text())


def read_downloaded(name, data_dir) -> TextData:
    """A named set whose one file under the data root is UTF-8 text (tinyshakespeare)."""
    (path,) = require(name, data_dir).values()
    return TextData(name, path.read_text(encoding="utf-8"))


def read_textfile(spec: str, data_dir) -> TextData:
    """The reader of ``textfile:PATH`` (``data_dir`` is not used: the path is the user's)."""
    raw = spec.split(":", 1)[1]
    if not raw:
        raise UserError("textfile needs a path: use textfile:PATH, PATH a UTF-8 text file")
    path = Path(raw).expanduser().absolute()
    if not path.exists():
        raise DataError(f"text file {path} does not exist; give textfile:PATH with an existing UTF-8 file")
    if not path.is_file():
        raise DataError(f"text file {path} is not a file; give textfile:PATH with a UTF-8 file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"text file {path} is not UTF-8 (bad byte at offset {exc.start}); "
                        "convert it to UTF-8 (e.g. iconv -t UTF-8)") from None
    if len(text) < 2:
        raise DataError(f"text file {path} is {'empty' if not text else 'too short'}; "
                        "give a file with some text to learn from")
    return TextData(f"textfile:{path}", text)
