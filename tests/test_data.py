"""Tests of paradigms.data: embedded datasets, the data root, checksums, downloads, image folders,
text. Real-data tests are marked slow and need ../shared/datasets (or $PARADIGMS_TEST_DATA)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
import threading
import time
import zipfile
from dataclasses import replace
from functools import lru_cache, partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from paradigms.data import (
    IMAGE_DATASETS,
    TEXT_DATASETS,
    ImageData,
    TextData,
    data_root,
    describe_datasets,
    load_images,
    load_text,
    lookup,
    registry,
    require,
)
from paradigms.data import root as root_mod
from paradigms.errors import DataError, UserError

SHARED = Path(os.environ.get("PARADIGMS_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
needs_shared = pytest.mark.skipif(not (SHARED / "SHA256SUMS").is_file(),
                                  reason=f"real datasets not found at {SHARED} (set $PARADIGMS_TEST_DATA)")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    """No test sees the user's root or reaches the network by accident."""
    monkeypatch.delenv("PARADIGMS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("PARADIGMS_OFFLINE", "1")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A static HTTP server on 127.0.0.1 serving tmp_path/www; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


# ---------------------------------------------------------------------------------------------
# digits (embedded)


def test_digits_shapes_split_and_balance(tmp_path, monkeypatch):
    monkeypatch.setenv("PARADIGMS_DATA", str(tmp_path / "never"))
    d = load_images("digits")
    assert not (tmp_path / "never").exists()  # the embedded default never touches the data root
    assert isinstance(d, ImageData) and not d.streaming
    assert d.train_x.shape == (1437, 1, 8, 8) and d.test_x.shape == (360, 1, 8, 8)
    assert d.train_x.dtype == torch.uint8 and d.train_y.dtype == torch.int64
    assert (d.channels, d.size, d.num_classes, d.num_train, d.num_test) == (1, (8, 8), 10, 1437, 360)
    assert int(d.train_x.max()) == 255 and int(d.train_x.min()) == 0
    assert d.classes == [str(i) for i in range(10)]
    counts = torch.bincount(d.test_y, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37  # stratified
    assert len(d.mean) == len(d.std) == 1 and 0.2 < d.mean[0] < 0.4
    x = d.train_x.float() / 255
    assert abs(x.mean().item() - d.mean[0]) < 1e-5 and abs(x.std(unbiased=False).item() - d.std[0]) < 1e-5
    again = load_images("digits")
    assert torch.equal(again.train_x, d.train_x) and torch.equal(again.test_y, d.test_y)


def test_unknown_names_hint():
    with pytest.raises(UserError, match="unknown dataset 'mnsit'; did you mean 'mnist'"):
        load_images("mnsit")
    with pytest.raises(UserError, match="text dataset"):
        load_images("tinyshakespeare")
    with pytest.raises(UserError, match="did you mean 'stdlib'"):
        load_text("stdlb")
    with pytest.raises(UserError, match="image dataset"):
        load_text("mnist")
    names = [n for n, _, _ in describe_datasets()]
    assert set(IMAGE_DATASETS) | set(TEXT_DATASETS) <= set(names)
    assert {k for _, k, _ in describe_datasets()} == {"image", "text"}


def test_registry_resolves_case_aliases_and_patterns():
    assert lookup("MNIST").name == "mnist"
    for alias, name in (("cifar-10", "cifar10"), ("Fashion_MNIST", "fashion-mnist"), ("fashionmnist", "fashion-mnist"),
                        ("olivetti", "olivetti-faces"), ("orl", "olivetti-faces"), ("orl-faces", "olivetti-faces"),
                        ("tiny-shakespeare", "tinyshakespeare"), ("shakespeare", "tinyshakespeare")):
        assert lookup(alias).name == name, alias
    assert lookup("imagefolder:/some/where", "image").name == "imagefolder"
    assert lookup("textfile:notes.txt", "text").name == "textfile"
    with pytest.raises(UserError, match="did you mean 'imagefolder:PATH'"):
        lookup("imagefolder")  # a pattern needs its path
    with pytest.raises(UserError, match=r"^'mnist' is an image dataset, not a text one; "
                                        r"text datasets: stdlib, tinyshakespeare, textfile:PATH$"):
        lookup("mnist", "text")
    with pytest.raises(UserError, match=r"'textfile:x' is a text dataset, not an image one; image datasets: "
                                        r"digits, .*olivetti-faces, imagefolder:PATH$"):
        lookup("textfile:x", "image")
    assert registry.names("image")[-1] == "imagefolder:PATH" and "stdlib" not in registry.names("image")
    assert registry.names() == [n for n, _, _ in describe_datasets()]
    assert IMAGE_DATASETS == ("digits", "mnist", "fashion-mnist", "cifar10", "olivetti-faces")
    assert TEXT_DATASETS == ("stdlib", "tinyshakespeare")


def test_registry_standard_augment():
    assert registry.standard_augment("cifar10") == ["crop", "flip"]
    assert registry.standard_augment("cifar-10") == ["crop", "flip"]  # aliases too
    assert registry.standard_augment("digits") == ["crop"]  # a mirrored 2 is no 2
    assert registry.standard_augment("imagefolder:/x") == ["resized_crop", "flip"]
    assert registry.standard_augment("no-such-set") == ["resized_crop", "flip"]


def test_every_registry_entry_is_complete():
    """Each reader imports, names are unique, and every source file has a checksum."""
    sums = root_mod.checksums()
    seen: set[str] = set()
    for info in registry.DATASETS:
        assert info.kind in ("image", "text") and info.description
        assert callable(info.reader_function()), info.reader
        keys = {info.name, *info.aliases}
        assert not keys & seen, keys & seen
        seen |= keys
        assert (info.source is None) == (info.name in ("digits", "stdlib") or info.pattern), info.name
        for f in info.source.files if info.source else ():
            assert len(sums[f"{info.source.directory}/{f}"]) == 64


# ---------------------------------------------------------------------------------------------
# data root, checksums, downloads


def test_data_root_precedence(tmp_path, monkeypatch):
    assert data_root() == tmp_path / "xdg-cache" / "paradigms" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_root() == Path.home() / ".cache" / "paradigms" / "datasets"
    monkeypatch.setenv("PARADIGMS_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root(str(tmp_path / "arg")) == tmp_path / "arg"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        data_root(tmp_path / "afile")


def test_checksums_file_is_read():
    sums = root_mod.checksums()
    assert sums["tinyshakespeare/input.txt"].startswith("86c4e6aa")
    assert len(sums) > 400 and all(len(v) == 64 and int(v, 16) >= 0 for v in sums.values())


def test_require_needs_a_dataset_with_files(tmp_path):
    with pytest.raises(UserError, match="'digits' has no files under the data root; only these do: mnist"):
        require("digits", tmp_path)
    with pytest.raises(UserError, match="unknown dataset 'mnsit'"):
        require("mnsit", tmp_path)


def test_missing_files_offline(tmp_path):
    with pytest.raises(DataError) as err:
        load_images("mnist", tmp_path / "root")
    msg = str(err.value)
    assert "\n" not in msg
    assert str(tmp_path / "root" / "mnist" / "train-images-idx3-ubyte.gz") in msg
    assert "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609" in msg
    assert "PARADIGMS_OFFLINE" in msg and "--data-dir" in msg and "yann.lecun.com" in msg
    assert not (tmp_path / "root").exists()


def test_download_failure_is_fast_and_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("PARADIGMS_OFFLINE")
    _patch_source(monkeypatch, "tinyshakespeare", {}, file_urls=("http://127.0.0.1:9/",))
    start = time.monotonic()
    with pytest.raises(DataError, match="downloading failed") as err:
        load_text("tinyshakespeare", tmp_path)
    assert time.monotonic() - start < 5
    assert str(tmp_path / "tinyshakespeare" / "input.txt") in str(err.value)
    assert not (tmp_path / "tinyshakespeare").exists()  # no half-written file, not even its folder


def test_corrupt_file(tmp_path):
    f = tmp_path / "tinyshakespeare" / "input.txt"
    f.parent.mkdir()
    f.write_text("not shakespeare")
    with pytest.raises(DataError) as err:
        load_text("tinyshakespeare", tmp_path)
    msg = str(err.value)
    assert str(f) in msg and sha(b"not shakespeare") in msg
    assert "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed" in msg and "delete" in msg
    assert f.read_text() == "not shakespeare"  # the user's file is never overwritten


def test_download_atomic(server, tmp_path):
    www, base = server
    payload = os.urandom(300_000)
    (www / "blob.bin").write_bytes(payload)
    dest = tmp_path / "dl" / "blob.bin"
    assert root_mod.download(base + "blob.bin", dest, sha(payload)) == dest
    assert dest.read_bytes() == payload and os.listdir(dest.parent) == ["blob.bin"]

    bad = tmp_path / "bad" / "blob.bin"
    with pytest.raises(DataError, match="expected"):
        root_mod.download(base + "blob.bin", bad, "0" * 64)
    assert not bad.parent.exists()
    with pytest.raises(root_mod.DownloadError, match="404"):
        root_mod.download(base + "nothing.bin", bad, "0" * 64)
    assert not bad.parent.exists()
    file_dest = tmp_path / "viafile" / "blob.bin"
    root_mod.download((www / "blob.bin").as_uri(), file_dest, sha(payload))
    assert file_dest.read_bytes() == payload


def _patch_source(monkeypatch, name, sums, **urls):
    """Make the registry fetch dataset ``name`` from ``urls`` only, with ``sums`` over the real checksums."""
    info = lookup(name)
    src = root_mod.Source(info.source.directory, info.source.files, info.source.homepage, **urls)
    patched = tuple(replace(d, source=src) if d.name == name else d for d in registry.DATASETS)
    monkeypatch.setattr(registry, "DATASETS", patched)
    real = dict(root_mod.checksums())
    real.update(sums)
    monkeypatch.setattr(root_mod, "checksums", lambda: real)


def test_require_downloads_missing_file(server, tmp_path, monkeypatch):
    monkeypatch.delenv("PARADIGMS_OFFLINE")
    www, base = server
    text = "To be, or not to be: that is the question.\n" * 20
    (www / "input.txt").write_text(text)
    _patch_source(monkeypatch, "tinyshakespeare", {"tinyshakespeare/input.txt": sha(text.encode())},
                  file_urls=(base + "missing/", base))  # the first source fails, the fallback works
    t = load_text("tinyshakespeare", tmp_path / "root")
    assert t.text == text and (tmp_path / "root" / "tinyshakespeare" / "input.txt").read_text() == text
    assert os.listdir(tmp_path / "root" / "tinyshakespeare") == ["input.txt"]
    assert load_text("tinyshakespeare", tmp_path / "root").text == text  # now present: verified, no download


def test_require_archive_tar_cifar(server, tmp_path, monkeypatch):
    monkeypatch.delenv("PARADIGMS_OFFLINE")
    www, base = server
    rng = np.random.default_rng(0)
    sums, buf = {}, io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin", "batches.meta.txt", "readme.html"]
        for n in names:
            if n.endswith(".bin"):
                rec = rng.integers(0, 256, (3, 3073), dtype=np.uint8)
                rec[:, 0] %= 10
                data = rec.tobytes()
            else:
                data = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{n}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            sums[f"cifar-10/cifar-10-batches-bin/{n}"] = sha(data)
    (www / "cifar.tar.gz").write_bytes(buf.getvalue())
    md5 = hashlib.md5(buf.getvalue()).hexdigest()
    _patch_source(monkeypatch, "cifar10", sums, archive_urls=(base + "cifar.tar.gz",), archive_md5=md5)
    d = load_images("cifar10", tmp_path)
    assert d.train_x.shape == (15, 3, 32, 32) and d.test_x.shape == (3, 3, 32, 32)
    assert d.classes[:2] == ["airplane", "automobile"] and len(d.classes) == 10
    folder = tmp_path / "cifar-10" / "cifar-10-batches-bin"
    assert sorted(os.listdir(folder)) == sorted(names[:-1])  # only the needed members, no temp files
    assert os.listdir(tmp_path / "cifar-10") == ["cifar-10-batches-bin"]

    # a wrong archive md5: nothing is extracted
    (folder / "test_batch.bin").unlink()
    _patch_source(monkeypatch, "cifar10", sums, archive_urls=(base + "cifar.tar.gz",), archive_md5="0" * 32)
    with pytest.raises(DataError, match="test_batch.bin"):
        load_images("cifar10", tmp_path)
    assert not (folder / "test_batch.bin").exists()


def test_require_archive_zip_olivetti(server, tmp_path, monkeypatch):
    monkeypatch.delenv("PARADIGMS_OFFLINE")
    www, base = server
    sums, buf = {}, io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("README", "faces")
        for k in range(1, 41):
            for i in range(1, 11):
                data = b"P5\n# a comment\n4 3\n255\n" + bytes([k, i] * 6)
                zf.writestr(f"s{k}/{i}.pgm", data)
                sums[f"olivetti-faces/s{k}/{i}.pgm"] = sha(data)
    (www / "att_faces.zip").write_bytes(buf.getvalue())
    _patch_source(monkeypatch, "olivetti-faces", sums, archive_urls=(base + "att_faces.zip",))
    d = load_images("olivetti-faces", tmp_path)
    assert d.train_x.shape == (320, 1, 3, 4) and d.test_x.shape == (80, 1, 3, 4)
    assert d.classes[0] == "s1" and d.classes[-1] == "s40"
    assert d.train_y[:9].tolist() == [0] * 8 + [1] and d.test_y[:3].tolist() == [0, 0, 1]
    assert int(d.train_x[0, 0, 0, 0]) == 1 and int(d.test_x[0, 0, 0, 1]) == 9  # s1/1.pgm and s1/9.pgm
    assert require("olivetti-faces", tmp_path)["s40/10.pgm"].is_file()


def _faces(root: Path, damaged: dict[str, bytes]) -> dict[str, str]:
    """A faces folder (4x3 PGMs, ``damaged`` replacing some files by path) and its checksums."""
    sums = {}
    for k in range(1, 41):
        for i in range(1, 11):
            data = damaged.get(f"s{k}/{i}.pgm", b"P5\n4 3\n255\n" + bytes(range(12)))
            (root / "olivetti-faces" / f"s{k}").mkdir(parents=True, exist_ok=True)
            (root / "olivetti-faces" / f"s{k}" / f"{i}.pgm").write_bytes(data)
            sums[f"olivetti-faces/s{k}/{i}.pgm"] = sha(data)
    return sums


@pytest.mark.parametrize("bad,why", [
    (b"P5\n4 3\n255\n" + bytes(5), "truncated"),  # pixels cut short
    (b"GIF89a not a face", "cannot identify"),  # not a PGM at all
    (b"P5\n5 3\n255\n" + bytes(15), "5x3 pixels, the other faces 4x3"),  # another size
])
def test_damaged_face_names_the_file_and_the_fix(tmp_path, monkeypatch, bad, why):
    sums = _faces(tmp_path, {"s3/7.pgm": bad})
    _patch_source(monkeypatch, "olivetti-faces", sums)
    with pytest.raises(DataError, match=why) as err:
        load_images("olivetti-faces", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "olivetti-faces" / "s3" / "7.pgm") in msg and "delete it and run again" in msg


def test_faces_read_with_pillow(tmp_path, monkeypatch):
    _patch_source(monkeypatch, "olivetti-faces", _faces(tmp_path, {}))
    d = load_images("orl", tmp_path)  # an alias
    assert d.name == "olivetti-faces" and d.train_x.shape == (320, 1, 3, 4)
    assert d.train_x[0, 0].flatten().tolist() == list(range(12))


# ---------------------------------------------------------------------------------------------
# image folders


def _png(path: Path, size=(6, 5), color=(255, 0, 0), mode="RGB"):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else color[0]).save(path)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "pics"
    for c, color in (("cat", (200, 10, 10)), ("dog", (10, 200, 10)), ("emu", (10, 10, 200))):
        for i in range(5):
            _png(root / c / f"{i}.png", color=color)
    _png(root / "dog" / "big.png", size=(12, 10), color=(10, 200, 10))  # resized to the common 6x5
    (root / "cat" / "notes.txt").write_text("not an image")  # skipped
    return root


def test_imagefolder_in_memory(folder):
    d = load_images(f"imagefolder:{folder}")
    assert d.classes == ["cat", "dog", "emu"] and not d.streaming
    assert d.train_x.shape[1:] == (3, 5, 6) and d.num_train + d.num_test == 16
    assert torch.bincount(d.test_y).tolist() == [1, 1, 1]
    assert d.train_x[d.train_y == 1][:, 1].float().mean().item() == pytest.approx(200, abs=1)
    assert len(d.mean) == 3
    again = load_images(f"imagefolder:{folder}")
    assert torch.equal(again.train_x, d.train_x) and torch.equal(again.test_y, d.test_y)


def test_imagefolder_streaming_matches_memory(folder):
    mem = load_images(f"imagefolder:{folder}")
    d = load_images(f"imagefolder:{folder}", max_memory_mb=0)
    assert d.streaming and d.train_x is None and d.train_y is None
    assert (d.channels, d.size, d.num_train, d.num_test, d.classes) == (3, (5, 6), mem.num_train, mem.num_test,
                                                                         mem.classes)
    x, y = d.train_stream[0]
    assert x.dtype == torch.uint8 and x.shape == (3, 5, 6) and isinstance(y, int)
    xs = torch.stack([d.train_stream[i][0] for i in range(len(d.train_stream))])
    assert torch.equal(xs, mem.train_x) and torch.equal(d.train_stream.targets, mem.train_y)
    assert d.mean == pytest.approx(mem.mean, abs=1e-6)
    clone = pickle.loads(pickle.dumps(d.train_stream))  # DataLoader workers get a pickled copy
    assert torch.equal(clone[3][0], xs[3])
    loader = torch.utils.data.DataLoader(d.test_stream, batch_size=2)
    assert next(iter(loader))[0].shape == (2, 3, 5, 6)


def test_imagefolder_grey_and_given_split(tmp_path):
    root = tmp_path / "g"
    for split, n in (("train", 3), ("val", 1)):
        for c in ("a", "b"):
            for i in range(n):
                _png(root / split / c / f"{i}.png", size=(4, 4), color=(100 if c == "a" else 50,), mode="L")
    d = load_images(f"imagefolder:{root}")
    assert d.channels == 1 and (d.num_train, d.num_test) == (6, 2) and d.classes == ["a", "b"]
    assert d.test_y.tolist() == [0, 1]


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_images(f"imagefolder:{tmp_path / 'nope'}")
    _png(tmp_path / "one" / "only" / "0.png")
    with pytest.raises(DataError, match="at least 2"):
        load_images(f"imagefolder:{tmp_path / 'one'}")
    _png(tmp_path / "two" / "a" / "0.png")
    _png(tmp_path / "two" / "a" / "1.png")
    (tmp_path / "two" / "b").mkdir()
    (tmp_path / "two" / "b" / "x.txt").write_text("no image")
    with pytest.raises(DataError, match=r"class folder .*b has no image"):
        load_images(f"imagefolder:{tmp_path / 'two'}")
    with pytest.raises(UserError, match="imagefolder:PATH"):
        load_images("imagefolder:")


# ---------------------------------------------------------------------------------------------
# text


def test_stdlib_text_deterministic_and_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("PARADIGMS_DATA", str(tmp_path / "never"))
    t = load_text("stdlib")
    assert isinstance(t, TextData) and 1_000_000 <= len(t.text) <= 2_000_000
    assert t.train + t.val == t.text and len(t.val) == len(t.text) - int(len(t.text) * 0.9)
    assert t.vocab == sorted(set(t.text)) and "def " in t.text
    assert not (tmp_path / "never").exists()
    ids = t.encode(t.val)
    assert ids.dtype == torch.int64 and ids.shape == (len(t.val),) and int(ids.max()) < t.vocab_size
    assert t.decode(ids) == t.val and t.decode(ids.tolist()[:50]) == t.val[:50]
    assert load_text("stdlib").text == t.text


def test_textfile(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("héllo wörld, ünïcode ✓ " * 10, encoding="utf-8")
    t = load_text(f"textfile:{f}")
    assert t.decode(t.encode("wörld ✓")) == "wörld ✓"
    with pytest.raises(UserError, match="not in the vocabulary"):
        t.encode("Z")
    with pytest.raises(UserError, match="out of range"):
        t.decode([t.vocab_size])
    with pytest.raises(DataError, match="does not exist"):
        load_text(f"textfile:{tmp_path / 'missing.txt'}")
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        load_text(f"textfile:{tmp_path / 'empty.txt'}")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_text(f"textfile:{tmp_path / 'latin1.txt'}")
    with pytest.raises(DataError, match="not a file"):
        load_text(f"textfile:{tmp_path}")


# ---------------------------------------------------------------------------------------------
# real data (slow)


@lru_cache(maxsize=None)
def _real(name: str) -> ImageData:
    return load_images(name, SHARED)


@pytest.mark.slow
@needs_shared
@pytest.mark.parametrize("name,shape,n,mean,std", [
    ("mnist", (1, 28, 28), (60000, 10000), (0.1307,), (0.3081,)),
    ("fashion-mnist", (1, 28, 28), (60000, 10000), (0.2860,), (0.3530,)),
    ("cifar10", (3, 32, 32), (50000, 10000), (0.49139968, 0.48215841, 0.44653091),
     (0.24703223, 0.24348513, 0.26158784)),
])
def test_real_image_datasets(name, shape, n, mean, std):
    d = _real(name)
    assert d.train_x.shape == (n[0], *shape) and d.test_x.shape == (n[1], *shape)
    assert d.train_x.dtype == torch.uint8 and d.num_classes == 10
    assert d.mean == pytest.approx(mean, abs=1e-4) and d.std == pytest.approx(std, abs=1e-4)


@pytest.mark.slow
@needs_shared
def test_real_label_counts():
    m = _real("mnist")
    assert torch.bincount(m.train_y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(m.test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    f = _real("fashion-mnist")
    assert torch.bincount(f.train_y).tolist() == [6000] * 10 and torch.bincount(f.test_y).tolist() == [1000] * 10
    assert f.classes[0] == "T-shirt/top" and f.classes[9] == "Ankle boot"
    c = _real("cifar10")
    assert c.train_y[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert c.test_y[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert torch.bincount(c.train_y[:10000]).tolist() == [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]
    assert torch.bincount(c.train_y).tolist() == [5000] * 10 and c.classes[0] == "airplane"


@pytest.mark.slow
@needs_shared
def test_real_olivetti():
    d = _real("olivetti-faces")
    assert d.train_x.shape == (320, 1, 112, 92) and d.test_x.shape == (80, 1, 112, 92)
    assert torch.bincount(d.train_y).tolist() == [8] * 40 and torch.bincount(d.test_y).tolist() == [2] * 40
    assert d.classes[0] == "s1" and d.num_classes == 40


@pytest.mark.slow
@needs_shared
def test_real_tinyshakespeare():
    t = load_text("tinyshakespeare", SHARED)
    assert len(t.text) == 1_115_394 and t.vocab_size == 65 and t.text.startswith("First Citizen:")
    assert t.decode(t.encode(t.text[:1000])) == t.text[:1000]


@pytest.mark.slow
@needs_shared
def test_real_root_via_env(monkeypatch):
    monkeypatch.setenv("PARADIGMS_DATA", str(SHARED))
    files = require("mnist")
    assert files["t10k-labels-idx1-ubyte.gz"] == SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(files["t10k-labels-idx1-ubyte.gz"]) as f:
        assert f.read(4) == b"\x00\x00\x08\x01"
