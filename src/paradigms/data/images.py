"""Image classification datasets as uint8 tensors (N, C, H, W), or disk-streaming Datasets.

``load_images(name)`` knows ``digits`` (scikit-learn's bundled 8x8 digits, no files needed),
``mnist``, ``fashion-mnist``, ``cifar10``, ``olivetti-faces`` (files under the data root, checked
by sha256 and downloaded when missing) and ``imagefolder:PATH`` (one sub-folder per class).
"""

from __future__ import annotations

import gzip
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from paradigms.data.root import require
from paradigms.errors import DataError, UserError, unknown

IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "olivetti-faces")
"""Named image datasets; ``imagefolder:PATH`` is accepted as well."""

ALIASES = {"cifar-10": "cifar10", "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
           "olivetti": "olivetti-faces", "orl": "olivetti-faces", "orl-faces": "olivetti-faces"}

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


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


class ImageFiles(Dataset):
    """Images decoded from disk per item (Pillow), converted to ``mode`` and resized to ``size``.

    Items are ``(uint8 tensor (C, H, W), int label)``. Picklable, so DataLoader workers can use it.
    """

    def __init__(self, files: list[str], labels: list[int], mode: str, size: tuple[int, int]):
        self.files = [str(f) for f in files]
        self.labels = [int(y) for y in labels]
        self.mode = mode
        self.size = (int(size[0]), int(size[1]))

    @property
    def channels(self) -> int:
        return 1 if self.mode == "L" else 3

    @property
    def targets(self) -> torch.Tensor:
        return torch.tensor(self.labels, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(_decode(self.files[i], self.mode, self.size)), self.labels[i]


def _decode(path: str, mode: str, size: tuple[int, int]) -> np.ndarray:
    """One image file as uint8 (C, H, W)."""
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


def read_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """One image file as float (C, H, W) in [0, 1]: greyscale files give 1 channel, others RGB."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise DataError(f"cannot read image {path}: no such file")
    try:
        with Image.open(path) as im:
            mode, size = ("L" if im.mode in ("1", "L", "I;16", "I", "F") else "RGB"), (im.height, im.width)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on a damaged file
        raise DataError(f"cannot read image {path}: {exc}") from None
    return torch.from_numpy(_decode(str(path), mode, size)).float() / 255


def _stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
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


def _make(name, train_x, train_y, test_x, test_y, classes) -> ImageData:
    mean, std = _stats(train_x)

    def t(a: np.ndarray, dtype) -> torch.Tensor:
        a = np.ascontiguousarray(a, dtype=dtype)
        return torch.from_numpy(a if a.flags.writeable else a.copy())

    return ImageData(name, t(train_x, np.uint8), t(train_y, np.int64), t(test_x, np.uint8),
                     t(test_y, np.int64), list(classes), mean, std)


# ---------------------------------------------------------------------------------------------
# named datasets


def _digits(data_dir, max_memory_mb) -> ImageData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.rint(d.data * (255.0 / 16.0)).clip(0, 255).astype(np.uint8).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=y)
    return _make("digits", x[tr], y[tr], x[te], y[te], [str(i) for i in range(10)])


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 + 4 * ndim or data[:3] != b"\x00\x00\x08" or data[3] != ndim:
        raise DataError(f"{path} is not an IDX file of {ndim} dimensions; delete it and run again")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise DataError(f"{path} is truncated; delete it and run again")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def _idx(name: str, classes: list[str]) -> Callable[..., ImageData]:
    def load(data_dir, max_memory_mb) -> ImageData:
        files = require(name, data_dir)
        parts = []
        for split in ("train", "t10k"):
            x = _read_idx(files[f"{split}-images-idx3-ubyte.gz"], 3)
            y = _read_idx(files[f"{split}-labels-idx1-ubyte.gz"], 1)
            if len(x) != len(y):
                raise DataError(f"{name}: {split} images and labels differ in count; delete the files and run again")
            parts += [x[:, None], y]
        return _make(name, *parts, classes)

    return load


def _cifar10(data_dir, max_memory_mb) -> ImageData:
    files = require("cifar10", data_dir)

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
    return _make("cifar10", np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train]),
                 test_x, test_y, classes)


def _read_pgm(path: Path) -> np.ndarray:
    """A binary PGM (P5, 8-bit) as uint8 (H, W)."""
    data = path.read_bytes()
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.find(b"\n", pos) + 1 or len(data)
            continue
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace():
            pos += 1
        if start == pos:
            break
        fields.append(data[start:pos])
    pos += 1  # the single whitespace after maxval
    if len(fields) < 4 or fields[0] != b"P5" or fields[3] != b"255":
        raise DataError(f"{path} is not an 8-bit binary PGM (P5) file; delete it and run again")
    w, h = int(fields[1]), int(fields[2])
    if len(data) - pos < w * h:
        raise DataError(f"{path} is truncated; delete it and run again")
    return np.frombuffer(data, np.uint8, count=w * h, offset=pos).reshape(h, w)


def _olivetti(data_dir, max_memory_mb) -> ImageData:
    files = require("olivetti-faces", data_dir)
    x = np.stack([_read_pgm(files[f"s{k}/{i}.pgm"]) for k in range(1, 41) for i in range(1, 11)])
    x = x.reshape(40, 10, 1, *x.shape[1:])
    y = np.repeat(np.arange(40, dtype=np.int64), 10).reshape(40, 10)
    return _make("olivetti-faces", x[:, :8].reshape(-1, *x.shape[2:]), y[:, :8].reshape(-1),
                 x[:, 8:].reshape(-1, *x.shape[2:]), y[:, 8:].reshape(-1), [f"s{k}" for k in range(1, 41)])


_LOADERS: dict[str, Callable[..., ImageData]] = {
    "digits": _digits,
    "mnist": _idx("mnist", [str(i) for i in range(10)]),
    "fashion-mnist": _idx("fashion-mnist", FASHION_CLASSES),
    "cifar10": _cifar10,
    "olivetti-faces": _olivetti,
}


# ---------------------------------------------------------------------------------------------
# image folders


def _class_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _scan(class_dir: Path) -> list[tuple[str, tuple[int, int], str]]:
    """The readable images under a class folder: (path, (W, H), mode), in sorted path order."""
    from PIL import Image

    found = []
    for root, dirs, names in os.walk(class_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for n in sorted(names):
            if n.startswith("."):
                continue
            path = os.path.join(root, n)
            try:
                with Image.open(path) as im:
                    found.append((path, im.size, im.mode))
            except Exception:  # noqa: BLE001 - not an image (or not one Pillow reads): skipped
                continue
    if not found:
        raise DataError(f"class folder {class_dir} has no image Pillow can read; add images or remove the folder")
    return found


def _split(labels: list[int], test_fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """A deterministic stratified split of item indices: about ``test_fraction`` of each class
    (at least one item when the class has two or more) goes to test."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    train, test = [], []
    for y in sorted(by_class):
        idx = np.array(by_class[y])
        perm = idx[rng.permutation(len(idx))]
        n_test = 0 if len(idx) < 2 else max(1, int(round(test_fraction * len(idx))))
        test += sorted(perm[:n_test].tolist())
        train += sorted(perm[n_test:].tolist())
    return train, test


def _imagefolder(spec: str, max_memory_mb: int) -> ImageData:
    raw = spec.split(":", 1)[1]
    if not raw:
        raise UserError("imagefolder needs a path: use imagefolder:PATH, PATH a folder with one sub-folder per class")
    path = Path(raw).expanduser().absolute()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DataError(f"imagefolder path {path} {what}; give a folder with one sub-folder of images per class")
    name = f"imagefolder:{path}"

    test_dir = next((path / d for d in ("test", "val") if (path / d).is_dir()), None)
    split_given = (path / "train").is_dir() and test_dir is not None
    train_dir = path / "train" if split_given else path
    class_dirs = _class_dirs(train_dir)
    if len(class_dirs) < 2:
        raise DataError(f"imagefolder {train_dir} has {len(class_dirs)} class sub-folder(s); "
                        "it needs at least 2 (one sub-folder of images per class)")
    classes = [d.name for d in class_dirs]
    index = {c: i for i, c in enumerate(classes)}
    items = [(f, size, mode, index[d.name]) for d in class_dirs for f, size, mode in _scan(d)]
    if split_given:
        n_train = len(items)
        for d in _class_dirs(test_dir):
            if d.name not in index:
                raise DataError(f"{d} is a class folder with no match in {train_dir}; "
                                f"rename or remove it (classes: {', '.join(classes)})")
            items += [(f, size, mode, index[d.name]) for f, size, mode in _scan(d)]
        train_idx, test_idx = list(range(n_train)), list(range(n_train, len(items)))
        if not test_idx:
            raise DataError(f"{test_dir} has no images; put images in class sub-folders there or remove it")
    else:
        train_idx, test_idx = _split([it[3] for it in items])
        if not test_idx:
            raise DataError(f"imagefolder {path} is too small to split 80/20: give each class at least 2 images "
                            "(or provide train/ and test/ sub-folders)")

    w, h = Counter(it[1] for it in items).most_common(1)[0][0]
    mode = "L" if all(it[2] in _GREY_MODES for it in items) else "RGB"
    channels = 1 if mode == "L" else 3
    files = [it[0] for it in items]
    labels = [it[3] for it in items]

    if len(items) * channels * h * w > max_memory_mb * 2**20:
        train = ImageFiles([files[i] for i in train_idx], [labels[i] for i in train_idx], mode, (h, w))
        test = ImageFiles([files[i] for i in test_idx], [labels[i] for i in test_idx], mode, (h, w))
        k = min(len(train), 256)
        sample = np.stack([train[int(i)][0].numpy() for i in np.linspace(0, len(train) - 1, k).round().astype(int)])
        mean, std = _stats(sample)
        return ImageData(name, None, None, None, None, classes, mean, std, train_stream=train, test_stream=test)

    x = np.empty((len(items), channels, h, w), dtype=np.uint8)
    for i, f in enumerate(files):
        x[i] = _decode(f, mode, (h, w))
    y = np.array(labels, dtype=np.int64)
    return _make(name, x[train_idx], y[train_idx], x[test_idx], y[test_idx], classes)


# ---------------------------------------------------------------------------------------------


def load_images(name: str, data_dir: str | os.PathLike[str] | None = None, max_memory_mb: int = 4096) -> ImageData:
    """Load an image dataset by name (see :data:`IMAGE_DATASETS`, or ``imagefolder:PATH``).

    ``data_dir`` chooses the data root (else ``$PARADIGMS_DATA``, else the user cache); ``digits``
    never touches it. An image folder whose decoded size exceeds ``max_memory_mb`` is streamed
    from disk (``train_stream``/``test_stream``) instead of being held in memory.
    """
    if name.startswith("imagefolder:"):
        return _imagefolder(name, max_memory_mb)
    key = ALIASES.get(name.lower(), name.lower())
    if key not in _LOADERS:
        from paradigms.data.text import TEXT_DATASETS

        if key in TEXT_DATASETS or key.startswith("textfile:"):
            raise UserError(f"{name!r} is a text dataset, not an image one; image datasets: "
                            + ", ".join(IMAGE_DATASETS) + ", imagefolder:PATH")
        raise unknown("dataset", name, IMAGE_DATASETS + ("imagefolder:PATH",))
    return _LOADERS[key](data_dir, max_memory_mb)
