"""Datasets: image classification sets as uint8 tensors and character-level text, and the batches
the training loop draws from them.

Every dataset is one entry of :mod:`.registry` (name, kind, aliases, files, reader). ``digits``
(images) and ``stdlib`` (text) are embedded and need no files. The others live under a data root
(``--data-dir``, else ``$PARADIGMS_DATA``, else ``~/.cache/paradigms/datasets``), are checked by
sha256 and are downloaded when missing (unless ``$PARADIGMS_OFFLINE=1``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same names, for type checkers and editors (importing the package imports none)
    from paradigms.data import registry
    from paradigms.data.folder import ImageFiles
    from paradigms.data.images import ImageData, load_images
    from paradigms.data.loader import ImageLoader, epoch_order, index_batches, unit
    from paradigms.data.registry import IMAGE_DATASETS, TEXT_DATASETS, DatasetInfo, lookup
    from paradigms.data.root import data_root, require
    from paradigms.data.text import TextData, load_text

__getattr__, __dir__, __all__ = attach(__name__, {
    "folder": ["ImageFiles"],
    "images": ["ImageData", "load_images"],
    "loader": ["ImageLoader", "epoch_order", "index_batches", "unit"],
    "registry": ["IMAGE_DATASETS", "TEXT_DATASETS", "DatasetInfo", "lookup"],
    "root": ["data_root", "require"],
    "text": ["TextData", "load_text"],
}, modules=["registry"])
__all__ = sorted([*__all__, "describe_datasets"])


def describe_datasets() -> list[tuple[str, str, str]]:
    """``(name, kind, description)`` for every dataset, kind being ``"image"`` or ``"text"``."""
    from . import registry

    return [(d.display, d.kind, d.description) for d in registry.DATASETS]
