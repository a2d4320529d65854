"""Your own images: ``imagefolder:PATH``, one sub-folder of images per class (or, for the self-supervised recipes,
images with no class folders: an unlabelled dataset, ``classes`` empty).

``PATH/train/`` with ``PATH/test/`` (or ``PATH/val/``) gives the split; otherwise 20% of each class
goes to test (stratified, seed 0). Images are converted to one mode (greyscale when every file is)
and resized to the most common size. A folder whose decoded size exceeds ``max_memory_mb`` is not
held in memory: :class:`ImageFiles` decodes each image from disk when it is asked for.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from paradigms.data.images import ImageData, decode_image, in_memory, pixel_stats
from paradigms.errors import DataError, UserError

GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
"""Pillow modes that hold no colour."""


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
        return torch.from_numpy(decode_image(self.files[i], self.mode, self.size)), self.labels[i]


def class_dirs(folder: Path) -> list[Path]:
    """The class sub-folders of ``folder`` (hidden ones skipped), sorted by name."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def scan(class_dir: Path) -> list[tuple[str, tuple[int, int], str]]:
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


def split(labels: list[int], test_fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
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


def read_folder(spec: str, data_dir, max_memory_mb: int) -> ImageData:
    """The reader of ``imagefolder:PATH`` (``data_dir`` is not used: the path is the user's)."""
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
    dirs = class_dirs(train_dir)
    unlabelled = not dirs and not split_given and any(p.is_file() for p in train_dir.iterdir())
    if unlabelled:  # images and no class folders: unlabelled (the self-supervised recipes learn from it)
        items = [(f, size, mode, 0) for f, size, mode in scan(train_dir)]
        return _images(name, items, *split([0] * len(items)), [], max_memory_mb, path)
    if len(dirs) < 2:
        raise DataError(f"imagefolder {train_dir} has {len(dirs)} class sub-folder(s); "
                        "it needs at least 2 (one sub-folder of images per class)")
    classes = [d.name for d in dirs]
    index = {c: i for i, c in enumerate(classes)}
    items = [(f, size, mode, index[d.name]) for d in dirs for f, size, mode in scan(d)]
    if split_given:
        n_train = len(items)
        for d in class_dirs(test_dir):
            if d.name not in index:
                raise DataError(f"{d} is a class folder with no match in {train_dir}; "
                                f"rename or remove it (classes: {', '.join(classes)})")
            items += [(f, size, mode, index[d.name]) for f, size, mode in scan(d)]
        train_idx, test_idx = list(range(n_train)), list(range(n_train, len(items)))
        if not test_idx:
            raise DataError(f"{test_dir} has no images; put images in class sub-folders there or remove it")
    else:
        train_idx, test_idx = split([it[3] for it in items])
    return _images(name, items, train_idx, test_idx, classes, max_memory_mb, path)


def _images(name, items, train_idx, test_idx, classes, max_memory_mb, path) -> ImageData:
    """The ImageData of scanned ``items`` (path, size, mode, label), in memory or streamed."""
    if not test_idx:
        raise DataError(f"imagefolder {path} is too small to split 80/20: give each class at least 2 images "
                        "(or provide train/ and test/ sub-folders)")
    w, h = Counter(it[1] for it in items).most_common(1)[0][0]
    mode = "L" if all(it[2] in GREY_MODES for it in items) else "RGB"
    channels = 1 if mode == "L" else 3
    files = [it[0] for it in items]
    labels = [it[3] for it in items]

    if len(items) * channels * h * w > max_memory_mb * 2**20:
        train = ImageFiles([files[i] for i in train_idx], [labels[i] for i in train_idx], mode, (h, w))
        test = ImageFiles([files[i] for i in test_idx], [labels[i] for i in test_idx], mode, (h, w))
        k = min(len(train), 256)
        sample = np.stack([train[int(i)][0].numpy() for i in np.linspace(0, len(train) - 1, k).round().astype(int)])
        mean, std = pixel_stats(sample)
        return ImageData(name, None, None, None, None, classes, mean, std, train_stream=train, test_stream=test)

    x = np.empty((len(items), channels, h, w), dtype=np.uint8)
    for i, f in enumerate(files):
        x[i] = decode_image(f, mode, (h, w))
    y = np.array(labels, dtype=np.int64)
    return in_memory(name, x[train_idx], y[train_idx], x[test_idx], y[test_idx], classes)
