"""Image classification datasets as uint8 tensors (N, C, H, W): :class:`ImageData` and the readers
of the named sets.

``load_images(name)`` looks the name up in :mod:`.registry` and calls its reader: ``digits``
(scikit-learn's bundled 8x8 digits, no files needed), ``mnist``, ``fashion-mnist``, ``cifar10``,
``olivetti-faces`` (files under the data root, checked by sha256 and downloaded when missing), or
``imagefolder:PATH`` (one sub-folder per class, read by :mod:`.folder`).
"""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from paradigms.data import registry
from paradigms.data.root import require
from paradigms.errors import DataError


@dataclass(repr=False)
class ImageData:
    """A classification image dataset.

    In memory: ``train_x``/``test_x`` are uint8 (N, C, H, W) and ``train_y``/``test_y`` int64 (N,).
    Streaming (a folder too large for memory): those four are None and ``train_stream`` /
    ``test_stream`` are Datasets whose items are ``(uint8 CHW tensor, int label)``; they also have
    ``.targets`` (int64 labels), ``.channels`` and ``.size``.
    ``mean``/``std`` are per-channel statistics of the train pixels scaled to [0, 1].
    """

    name: str
    train_x: torch.Tensor | None
    train_y: torch.Tensor | None
    test_x: torch.Tensor | None
    test_y: torch.Tensor | None
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_stream: Dataset | None = None
    test_stream: Dataset | None = None

    @property
    def streaming(self) -> bool:
        return self.train_x is None

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1]) if self.train_x is not None else self.train_stream.channels

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)."""
        if self.train_x is not None:
            return int(self.train_x.shape[2]), int(self.train_x.shape[3])
        return tuple(self.train_stream.size)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def labelled(self) -> bool:
        """False for a folder of images with no class sub-folders (its labels are all 0 and mean nothing)."""
        return bool(self.classes)

    @property
    def num_train(self) -> int:
        return len(self.train_x) if self.train_x is not None else len(self.train_stream)

    @property
    def num_test(self) -> int:
        if self.test_x is not None:
            return len(self.test_x)
        return len(self.test_stream) if self.test_stream is not None else 0

    def __repr__(self) -> str:
        kind = "streaming" if self.streaming else "in memory"
        h, w = self.size
        return (f"ImageData({self.name!r}, {self.num_train} train / {self.num_test} test, "
                f"{self.channels}x{h}x{w}, {self.num_classes} classes, {kind})")


def load_images(name: str, data_dir: str | os.PathLike[str] | None = None, max_memory_mb: int = 4096) -> ImageData:
    """Load an image dataset by name (see :data:`IMAGE_DATASETS`, or ``imagefolder:PATH``).

    ``data_dir`` chooses the data root (else ``$PARADIGMS_DATA``, else the user cache); ``digits``
    never touches it. An image folder whose decoded size exceeds ``max_memory_mb`` is streamed
    from disk (``train_stream``/``test_stream``) instead of being held in memory.
    """
    info = registry.lookup(name, "image")
    read = info.reader_function()
    return read(name if info.pattern else info.name, data_dir, max_memory_mb)


# ---------------------------------------------------------------------------------------------
# single image files


def decode_image(path: str, mode: str, size: tuple[int, int]) -> np.ndarray:
    """One image file as uint8 (C, H, W), converted to Pillow ``mode`` and resized to ``size`` (H, W)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert(mode)
            if im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on a damaged file
        raise DataError(f"cannot decode image {path}: {exc}; delete or replace the file") from None
    return a[None].copy() if a.ndim == 2 else np.ascontiguousarray(a.transpose(2, 0, 1))


def read_image(source: str | os.PathLike[str] | bytes) -> torch.Tensor:
    """One image, a file or its bytes, as float (C, H, W) in [0, 1]: greyscale images give 1 channel, others RGB."""
    import io

    from PIL import Image

    if isinstance(source, (bytes, bytearray)):
        name, opened = "the image sent", io.BytesIO(source)
    else:
        name = opened = Path(source)
        if not opened.is_file():
            raise DataError(f"cannot read image {name}: no such file")
    try:
        with Image.open(opened) as im:
            im = im.convert("L" if im.mode in ("1", "L", "I;16", "I", "F") else "RGB")
            a = np.asarray(im, dtype=np.uint8)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on a damaged file
        raise DataError(f"cannot read image {name}: {exc}") from None
    return torch.from_numpy(a[None].copy() if a.ndim == 2 else np.ascontiguousarray(a.transpose(2, 0, 1))).float() / 255


# ---------------------------------------------------------------------------------------------
# building an ImageData


def pixel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and (population) std of uint8 (N, C, H, W) pixels scaled to [0, 1]."""
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = np.bincount(np.ascontiguousarray(x[:, c]).reshape(-1), minlength=256).astype(np.float64)
        n = counts.sum()
        m = float((counts * values).sum() / n)
        v = float((counts * values**2).sum() / n) - m * m
        means.append(m)
        stds.append(float(np.sqrt(max(v, 0.0))))
    return tuple(means), tuple(stds)


def in_memory(name, train_x, train_y, test_x, test_y, classes) -> ImageData:
    """An in-memory :class:`ImageData` from numpy arrays (uint8 images, integer labels)."""
    mean, std = pixel_stats(train_x)

    def t(a: np.ndarray, dtype) -> torch.Tensor:
        a = np.ascontiguousarray(a, dtype=dtype)
        return torch.from_numpy(a if a.flags.writeable else a.copy())

    return ImageData(name, t(train_x, np.uint8), t(train_y, np.int64), t(test_x, np.uint8),
                     t(test_y, np.int64), list(classes), mean, std)


# ---------------------------------------------------------------------------------------------
# the readers named in the registry: read(name, data_dir, max_memory_mb) -> ImageData


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits as uint8 images and labels, and the split's indices: read once per process (a lecture makes many
    runs on them); each caller gets its own copies (fancy indexing copies)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.rint(d.data * (255.0 / 16.0)).clip(0, 255).astype(np.uint8).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=y)
    return x, y, tr, te


def read_digits(name, data_dir, max_memory_mb) -> ImageData:
    """scikit-learn's bundled 8x8 digits, scaled to 0..255, split 80/20 stratified (seed 0)."""
    x, y, tr, te = _digits()
    return in_memory(name, x[tr], y[tr], x[te], y[te], [str(i) for i in range(10)])


def _read_idx_file(path: Path, ndim: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 + 4 * ndim or data[:3] != b"\x00\x00\x08" or data[3] != ndim:
        raise DataError(f"{path} is not an IDX file of {ndim} dimensions; delete it and run again")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise DataError(f"{path} is truncated; delete it and run again")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def read_idx(name, data_dir, max_memory_mb) -> ImageData:
    """A set in MNIST's IDX format (mnist, fashion-mnist): gzipped train and t10k images and labels."""
    files = require(name, data_dir)
    parts = []
    for split in ("train", "t10k"):
        x = _read_idx_file(files[f"{split}-images-idx3-ubyte.gz"], 3)
        y = _read_idx_file(files[f"{split}-labels-idx1-ubyte.gz"], 1)
        if len(x) != len(y):
            raise DataError(f"{name}: {split} images and labels differ in count; delete the files and run again")
        parts += [x[:, None], y]
    return in_memory(name, *parts, registry.lookup(name).classes)


def read_cifar10(name, data_dir, max_memory_mb) -> ImageData:
    """CIFAR-10's binary batches: records of one label byte then 3x32x32 pixel bytes."""
    files = require(name, data_dir)

    def batch(f: str) -> tuple[np.ndarray, np.ndarray]:
        path = files[f"cifar-10-batches-bin/{f}"]
        r = np.fromfile(path, np.uint8)
        if r.size % 3073:
            raise DataError(f"{path} is not a CIFAR-10 binary batch (size not a multiple of 3073); delete it")
        r = r.reshape(-1, 3073)
        return r[:, 1:].reshape(-1, 3, 32, 32), r[:, 0]

    train = [batch(f"data_batch_{i}.bin") for i in range(1, 6)]
    test_x, test_y = batch("test_batch.bin")
    meta = files["cifar-10-batches-bin/batches.meta.txt"].read_text(encoding="utf-8")
    classes = [line.strip() for line in meta.splitlines() if line.strip()]
    return in_memory(name, np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train]),
                     test_x, test_y, classes)


def _read_face(path: Path) -> np.ndarray:
    """One face image (a PGM file) as uint8 (H, W)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"), dtype=np.uint8)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on a damaged file
        raise DataError(f"{path} is not a readable PGM image ({exc}); delete it and run again") from None


def read_faces(name, data_dir, max_memory_mb) -> ImageData:
    """The AT&T/ORL faces: ``s1..s40/1..10.pgm``, one folder per person; images 1-8 train, 9-10 test."""
    files = require(name, data_dir)
    classes = registry.lookup(name).classes
    faces = []
    for person in classes:
        for i in range(1, 11):
            path = files[f"{person}/{i}.pgm"]
            face = _read_face(path)
            if faces and face.shape != faces[0].shape:
                raise DataError(f"{path} is {face.shape[1]}x{face.shape[0]} pixels, the other faces "
                                f"{faces[0].shape[1]}x{faces[0].shape[0]}; delete it and run again")
            faces.append(face)
    x = np.stack(faces).reshape(len(classes), 10, 1, *faces[0].shape)
    y = np.repeat(np.arange(len(classes), dtype=np.int64), 10).reshape(len(classes), 10)
    return in_memory(name, x[:, :8].reshape(-1, *x.shape[2:]), y[:, :8].reshape(-1),
                     x[:, 8:].reshape(-1, *x.shape[2:]), y[:, 8:].reshape(-1), classes)
