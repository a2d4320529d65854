"""Your own images: ``imagefolder:PATH``, one sub-folder of images per class (or, for the self-supervised recipes,
images with no class folders: an unlabelled dataset, ``classes`` empty).

``PATH/train/`` with ``PATH/test/`` (or ``PATH/val/``) gives the split; otherwise 20% of each class
goes to test (stratified, seed 0). Images are converted to one mode (greyscale when every file is)
and resized to the most common size. A folder whose decoded size exceeds ``max_memory_mb`` is not
held in memory: :class:`ImageFiles` decodes each image from disk when it is asked for. Files that are not
images (Pillow cannot open them) are skipped, and the first read of a folder in a process says so on stderr,
one line (the main process alone under torchrun).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from paradigms.data.images import ImageData, decode_image, in_memory, pixel_stats
from paradigms.errors import DataError, UserError

GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
"""Pillow modes that hold no colour."""

LAYOUT = ("an image folder holds one sub-folder of images per class (PATH/cat/1.png, PATH/dog/1.jpg, ...; "
          "train/ and test/ sub-folders optional)")
"""How an image folder is laid out, said by the errors about one."""

_said: set[str] = set()
"""The skipped-files notes this process has printed (one per folder)."""


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


def scan(class_dir: Path, skipped: list[str] | None = None,
         what: str = "class folder") -> list[tuple[str, tuple[int, int], str]]:
    """The readable images under a class folder: (path, (W, H), mode), in sorted path order. The files that are
    not images (Pillow cannot open them) are skipped, and appended to ``skipped`` when it is given."""
    from PIL import Image

    found, passed = [], []
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
                passed.append(path)
    if skipped is not None:
        skipped += passed
    if not found:
        why = f": {describe_skipped(passed, class_dir)}" if passed else ""
        fix = f"add images: {LAYOUT}" if what == "imagefolder" else "add images or remove the folder"
        raise DataError(f"{what} {class_dir} has no image Pillow can read{why}; {fix}")
    return found


def describe_skipped(files: list[str], folder: Path, show: int = 3) -> str:
    """``3 files that are not images (.txt, .csv): a.txt, b/c.csv, d.txt``: how many, their kinds, the first
    ``show`` (paths relative to ``folder``)."""
    kinds = Counter(os.path.splitext(f)[1].lower() or "no extension" for f in files)
    names = [os.path.relpath(f, folder) for f in files[:show]]
    more = f" and {len(files) - show} more" if len(files) > show else ""
    noun = "file that is not an image" if len(files) == 1 else "files that are not images"
    return (f"{len(files)} {noun} ({', '.join(k for k, _ in kinds.most_common())}): "
            f"{', '.join(names)}{more}")


def note_skipped(name: str, files: list[str], folder: Path) -> None:
    """Say on stderr, once per folder and process (the main process alone under torchrun), which files the read
    of an image folder skipped."""
    if not files or os.environ.get("RANK", "0") != "0":
        return
    line = f"{name}: skipped {describe_skipped(files, folder)}"
    if line not in _said:
        _said.add(line)
        print(line, file=sys.stderr)


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
        raise DataError(f"imagefolder path {path} {what}; give the path of a folder of images: {LAYOUT}")
    name = f"imagefolder:{path}"

    test_dir = next((path / d for d in ("test", "val") if (path / d).is_dir()), None)
    split_given = (path / "train").is_dir() and test_dir is not None
    train_dir = path / "train" if split_given else path
    dirs = class_dirs(train_dir)
    skipped: list[str] = []
    files = [p for p in train_dir.iterdir() if p.is_file() and not p.name.startswith(".")]
    if not dirs and not split_given and not files:
        raise DataError(f"imagefolder {train_dir} has no images and no sub-folders; {LAYOUT}")
    if not dirs and not split_given:  # images and no class folders: unlabelled (the self-supervised recipes)
        items = [(f, size, mode, 0) for f, size, mode in scan(train_dir, skipped, "imagefolder")]
        data = _images(name, items, *split([0] * len(items)), [], max_memory_mb, path)
        note_skipped(name, skipped, path)
        return data
    if len(dirs) < 2:
        raise DataError(f"imagefolder {train_dir} has {len(dirs)} class sub-folder(s); "
                        f"it needs at least 2: {LAYOUT}")
    classes = [d.name for d in dirs]
    index = {c: i for i, c in enumerate(classes)}
    items = [(f, size, mode, index[d.name]) for d in dirs for f, size, mode in scan(d, skipped)]
    if split_given:
        n_train = len(items)
        for d in class_dirs(test_dir):
            if d.name not in index:
                raise DataError(f"{d} is a class folder with no match in {train_dir}; "
                                f"rename or remove it (classes: {', '.join(classes)})")
            items += [(f, size, mode, index[d.name]) for f, size, mode in scan(d, skipped)]
        train_idx, test_idx = list(range(n_train)), list(range(n_train, len(items)))
        if not test_idx:
            raise DataError(f"{test_dir} has no images; put images in class sub-folders there or remove it")
    else:
        train_idx, test_idx = split([it[3] for it in items])
    data = _images(name, items, train_idx, test_idx, classes, max_memory_mb, path)
    note_skipped(name, skipped, path)
    return data


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
