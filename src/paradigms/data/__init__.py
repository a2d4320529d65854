"""Datasets: image classification sets as uint8 tensors and character-level text.

``digits`` (images) and ``stdlib`` (text) are embedded and need no files. The others live under a
data root (``--data-dir``, else ``$PARADIGMS_DATA``, else ``~/.cache/paradigms/datasets``), are
checked by sha256 and are downloaded when missing (unless ``$PARADIGMS_OFFLINE=1``).
"""

from __future__ import annotations

from paradigms.data.images import IMAGE_DATASETS, ImageData, ImageFiles, load_images
from paradigms.data.root import data_root, require
from paradigms.data.text import TEXT_DATASETS, TextData, load_text

__all__ = [
    "IMAGE_DATASETS",
    "TEXT_DATASETS",
    "ImageData",
    "ImageFiles",
    "TextData",
    "data_root",
    "describe_datasets",
    "load_images",
    "load_text",
    "require",
]

_DESCRIPTIONS: tuple[tuple[str, str, str], ...] = (
    ("digits", "image", "scikit-learn's 8x8 digits, 1,437 train / 360 test, 10 classes (embedded, no download)"),
    ("mnist", "image", "MNIST handwritten digits, 28x28 grey, 60,000 train / 10,000 test, 10 classes"),
    ("fashion-mnist", "image", "Zalando's Fashion-MNIST, 28x28 grey, 60,000 train / 10,000 test, 10 classes"),
    ("cifar10", "image", "CIFAR-10 (binary version), 32x32 RGB, 50,000 train / 10,000 test, 10 classes"),
    ("olivetti-faces", "image", "AT&T/ORL faces, 112x92 grey, 40 people, images 1-8 train / 9-10 test"),
    ("imagefolder:PATH", "image", "your folder: one sub-folder of images per class (train/ + test/ or val/ optional)"),
    ("stdlib", "text", "Python's standard-library sources, first 2,000,000 characters (embedded, no download)"),
    ("tinyshakespeare", "text", "Karpathy's Tiny Shakespeare, 1,115,394 characters, 65 distinct"),
    ("textfile:PATH", "text", "your UTF-8 text file, first 90% train / last 10% val"),
)


def describe_datasets() -> list[tuple[str, str, str]]:
    """``(name, kind, description)`` for every dataset, kind being ``"image"`` or ``"text"``."""
    return list(_DESCRIPTIONS)
