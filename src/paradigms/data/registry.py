"""The one table of datasets: every name, its kind, aliases, files, usual augmentation and reader.

Everything else reads this table: ``load_images``/``load_text`` find their reader here, the data
root (:mod:`.root`) finds the files to check and fetch, and ``augment: [standard]`` finds the
dataset's usual policy. To add a dataset, add one :class:`DatasetInfo` to :data:`DATASETS`.

Readers are named as ``"module:function"`` strings and imported only when a dataset is loaded, so
this module imports neither the image nor the text code. An image reader is called as
``read(name, data_dir, max_memory_mb)``, a text reader as ``read(name, data_dir)``; ``name`` is the
dataset's own name, or the whole ``imagefolder:PATH`` / ``textfile:PATH`` for a pattern.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from paradigms.errors import UserError, unknown

KINDS = ("image", "text")

DEFAULT_AUGMENT = ("resized_crop", "flip")
"""The usual augmentation of an image set the table gives none for (e.g. your own folder)."""


@dataclass(frozen=True)
class Source:
    """The files one dataset needs under the data root, and where they come from.

    ``files`` are paths relative to ``root / directory``. A file source downloads each file from
    ``base + basename`` for the first base URL that works; an archive source downloads one archive
    (checked by md5 when given) and extracts the wanted members, matched by path suffix.
    """

    directory: str
    files: tuple[str, ...]
    homepage: str
    file_urls: tuple[str, ...] = ()
    archive_urls: tuple[str, ...] = ()
    archive_md5: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset. ``pattern`` entries (``imagefolder``, ``textfile``) are written ``NAME:PATH``.

    ``source`` is None for sets that need no files under the data root (embedded, or your own
    path). ``classes`` are the class names where the files do not hold them. ``standard_augment``
    is what ``augment: [standard]`` expands to. ``origin`` and ``licence`` say where the data comes
    from and on what terms (``paradigms datasets`` shows them).
    """

    name: str
    kind: str
    description: str
    reader: str
    aliases: tuple[str, ...] = ()
    source: Source | None = None
    classes: tuple[str, ...] = ()
    standard_augment: tuple[str, ...] = DEFAULT_AUGMENT
    pattern: bool = False
    origin: str = ""
    licence: str = ""

    @property
    def display(self) -> str:
        """The name as the user writes it: ``mnist``, ``imagefolder:PATH``."""
        return f"{self.name}:PATH" if self.pattern else self.name

    def reader_function(self) -> Callable:
        """The function named by ``reader``, imported now."""
        module, _, function = self.reader.partition(":")
        return getattr(importlib.import_module(module), function)


_IDX = tuple(f"{split}-{part}-ubyte.gz" for split in ("train", "t10k") for part in ("images-idx3", "labels-idx1"))

DATASETS: tuple[DatasetInfo, ...] = (
    DatasetInfo(
        "digits", "image",
        "scikit-learn's 8x8 digits, 1,437 train / 360 test, 10 classes (embedded, no download)",
        reader="paradigms.data.images:read_digits",
        standard_augment=("crop",),  # no flips: a mirrored 2 is no 2
        origin="UCI's Optical Recognition of Handwritten Digits (test part), as scikit-learn ships it",
        licence="CC BY 4.0 (UCI Machine Learning Repository); scikit-learn is BSD-3-Clause",
    ),
    DatasetInfo(
        "mnist", "image",
        "MNIST handwritten digits, 28x28 grey, 60,000 train / 10,000 test, 10 classes",
        reader="paradigms.data.images:read_idx",
        source=Source(
            directory="mnist",
            files=_IDX,
            homepage="http://yann.lecun.com/exdb/mnist/",
            file_urls=("http://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        ),
        classes=tuple(str(i) for i in range(10)),
        standard_augment=("crop",),
        origin="Y. LeCun, C. Cortes, C. J. C. Burges, The MNIST database of handwritten digits",
        licence="CC BY-SA 3.0, as the MNIST copyright notice states",
    ),
    DatasetInfo(
        "fashion-mnist", "image",
        "Zalando's Fashion-MNIST, 28x28 grey, 60,000 train / 10,000 test, 10 classes",
        reader="paradigms.data.images:read_idx",
        aliases=("fashion_mnist", "fashionmnist"),
        source=Source(
            directory="fashion-mnist",
            files=_IDX,
            homepage="https://github.com/zalandoresearch/fashion-mnist",
            file_urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        ),
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        standard_augment=("crop", "flip"),
        origin="H. Xiao, K. Rasul, R. Vollgraf 2017, Zalando Research",
        licence="MIT (Copyright 2017 Zalando SE)",
    ),
    DatasetInfo(
        "cifar10", "image",
        "CIFAR-10 (binary version), 32x32 RGB, 50,000 train / 10,000 test, 10 classes",
        reader="paradigms.data.images:read_cifar10",
        aliases=("cifar-10",),
        source=Source(
            directory="cifar-10",
            files=tuple(f"cifar-10-batches-bin/{n}" for n in
                        [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin", "batches.meta.txt"]),
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            archive_urls=("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
            archive_md5="c32a1d4ab5d03f1284b67883e8d87530",
        ),
        standard_augment=("crop", "flip"),
        origin="A. Krizhevsky 2009, Learning multiple layers of features from tiny images (technical report)",
        licence="no explicit licence upstream; cite the technical report",
    ),
    DatasetInfo(
        "olivetti-faces", "image",
        "AT&T/ORL faces, 112x92 grey, 40 people, images 1-8 train / 9-10 test",
        reader="paradigms.data.images:read_faces",
        aliases=("olivetti", "orl", "orl-faces"),
        source=Source(
            directory="olivetti-faces",
            files=tuple(f"s{k}/{i}.pgm" for k in range(1, 41) for i in range(1, 11)),
            homepage="http://www.cl.cam.ac.uk/research/dtg/attarchive/facedatabase.html",
            archive_urls=("http://www.cl.cam.ac.uk/Research/DTG/attarchive/pub/data/att_faces.zip",),
        ),
        classes=tuple(f"s{k}" for k in range(1, 41)),
        standard_augment=("crop", "flip"),
        origin="AT&T Laboratories Cambridge (Olivetti Research Laboratory), F. Samaria & A. Harter 1994",
        licence="no explicit licence; the original README asks to credit Olivetti Research Laboratory and cite the "
                "paper",
    ),
    DatasetInfo(
        "imagefolder", "image",
        "your folder: one sub-folder of images per class (train/ + test/ or val/ optional)",
        reader="paradigms.data.folder:read_folder",
        pattern=True,
    ),
    DatasetInfo(
        "stdlib", "text",
        "Python's standard-library sources, first 2,000,000 characters (embedded, no download)",
        reader="paradigms.data.text:read_stdlib",
        standard_augment=(),
        origin="the Python installation running paradigms",
        licence="Python Software Foundation License",
    ),
    DatasetInfo(
        "tinyshakespeare", "text",
        "Karpathy's Tiny Shakespeare, 1,115,394 characters, 65 distinct",
        reader="paradigms.data.text:read_downloaded",
        aliases=("tiny-shakespeare", "shakespeare"),
        source=Source(
            directory="tinyshakespeare",
            files=("input.txt",),
            homepage="https://github.com/karpathy/char-rnn",
            file_urls=("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/",),
        ),
        standard_augment=(),
        origin="A. Karpathy's char-rnn, a concatenation of Shakespeare's works",
        licence="the text is in the public domain (the char-rnn repository states no licence)",
    ),
    DatasetInfo(
        "textfile", "text",
        "your UTF-8 text file, first 90% train / last 10% val",
        reader="paradigms.data.text:read_textfile",
        standard_augment=(),
        pattern=True,
    ),
)

IMAGE_DATASETS = tuple(d.name for d in DATASETS if d.kind == "image" and not d.pattern)
"""Named image datasets; ``imagefolder:PATH`` is accepted as well."""

TEXT_DATASETS = tuple(d.name for d in DATASETS if d.kind == "text" and not d.pattern)
"""Named text datasets; ``textfile:PATH`` is accepted as well."""

_AN = {"image": "an image", "text": "a text"}


def names(kind: str | None = None) -> list[str]:
    """Every dataset's name as the user writes it (``imagefolder:PATH``), of ``kind`` when given."""
    _check_kind(kind)
    return [d.display for d in DATASETS if kind is None or d.kind == kind]


def lookup(name: str, kind: str | None = None) -> DatasetInfo:
    """The entry for ``name``: any case, an alias, or ``imagefolder:``/``textfile:`` and a path.

    An unknown name, or (when ``kind`` is given) a dataset of the other kind, raises
    :class:`UserError` naming the valid choices.
    """
    _check_kind(kind)
    found = _find(name)
    if found is None:
        raise unknown("dataset", name, names(kind))
    if kind is not None and found.kind != kind:
        raise UserError(f"{name!r} is {_AN[found.kind]} dataset, not {_AN[kind]} one; "
                        f"{kind} datasets: " + ", ".join(names(kind)))
    return found


def standard_augment(name: str) -> list[str]:
    """The transforms ``augment: [standard]`` means for dataset ``name`` (unknown names: the default)."""
    found = _find(name)
    return list(found.standard_augment if found is not None else DEFAULT_AUGMENT)


def _find(name: str) -> DatasetInfo | None:
    prefix, colon, _ = name.partition(":")
    key = name.lower()
    for d in DATASETS:
        if d.pattern:
            if colon and prefix.lower() == d.name:
                return d
        elif key == d.name or key in d.aliases:
            return d
    return None


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"dataset kind must be one of {KINDS} or None, not {kind!r}")
