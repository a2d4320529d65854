"""Where datasets live, and how their files are checked and fetched.

A *data root* is a folder laid out like ``shared/datasets``::

    mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    fashion-mnist/   (same names)
    cifar-10/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin + batches.meta.txt
    tinyshakespeare/input.txt
    olivetti-faces/s1..s40/1..10.pgm

Which files a dataset needs, and where they come from, is its ``source`` in :mod:`.registry`.
Every file is checked against the sha256 in the package's ``checksums.txt`` (SHA256SUMS format).
A missing file is downloaded from its canonical source (unless ``$PARADIGMS_OFFLINE=1``), written
to a temporary file beside its final path, checked, then moved into place with ``os.replace``: a
half-written or wrong file never sits at the final path.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path

from paradigms.data.registry import DATASETS, Source, lookup
from paradigms.errors import DataError, UserError

DOWNLOAD_TIMEOUT = 10.0
"""Seconds a download may wait on the network (connect or read) before it is given up."""

_CHUNK = 1 << 20


# ---------------------------------------------------------------------------------------------
# the root


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``data_dir`` if given, else ``$PARADIGMS_DATA``, else the user cache
    (``$XDG_CACHE_HOME/paradigms/datasets``, default ``~/.cache/paradigms/datasets``).

    The folder is not created here (only a download creates it).
    """
    if data_dir is not None and str(data_dir) != "":
        root, origin = Path(data_dir), "--data-dir"
    elif os.environ.get("PARADIGMS_DATA"):
        root, origin = Path(os.environ["PARADIGMS_DATA"]), "$PARADIGMS_DATA"
    else:
        cache_home = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
        root, origin = Path(cache_home) / "paradigms" / "datasets", "the default cache"
    root = root.expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise DataError(f"data root {root} (from {origin}) is a file, not a folder; "
                        "give a folder with --data-dir or $PARADIGMS_DATA")
    return root


def offline() -> bool:
    """True when ``$PARADIGMS_OFFLINE`` forbids downloads (any value but '', 0, false, no)."""
    return os.environ.get("PARADIGMS_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


# ---------------------------------------------------------------------------------------------
# checksums


def checksums_path() -> str:
    """Where the packaged checksum list is (for messages)."""
    return str(resources.files("paradigms.data").joinpath("checksums.txt"))


@cache
def checksums() -> Mapping[str, str]:
    """``{relative path: sha256}`` for every known data file, from the package's checksums.txt."""
    text = resources.files("paradigms.data").joinpath("checksums.txt").read_text(encoding="utf-8")
    sums: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, rel = line.partition("  ")
        sums[rel.strip().removeprefix("*")] = digest.strip().lower()
    return sums


_VERIFIED: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file, cached in memory by (path, size, mtime) so a file is hashed once."""
    path = Path(path)
    st = path.stat()
    key = (str(path.absolute()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        with open(path, "rb") as f:
            _VERIFIED[key] = hashlib.file_digest(f, "sha256").hexdigest()
    return _VERIFIED[key]


def verify(path: Path, expected: str, homepage: str = "") -> Path:
    """Raise :class:`DataError` unless the file at ``path`` has sha256 ``expected``."""
    actual = sha256_file(path)
    if actual != expected:
        where = f" from {homepage}" if homepage else ""
        raise DataError(f"{path} is corrupt or not the official file: its sha256 is {actual}, expected {expected}; "
                        f"delete it and run again to download it afresh{where} (or put the official file there)")
    return path


# ---------------------------------------------------------------------------------------------
# downloads


class DownloadError(DataError):
    """The network failed (no connection, timeout, HTTP error): distinct from a wrong checksum."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _mkdirs(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, deepest first."""
    created = []
    p = folder
    while not p.exists():
        created.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _rmdirs(created: list[Path]) -> None:
    """Remove folders made by :func:`_mkdirs` that are still empty (after a failed download)."""
    for p in created:
        try:
            p.rmdir()
        except OSError:
            return


def download(url: str, dest: str | os.PathLike[str], sha256: str | None = None, *,
             md5: str | None = None, timeout: float | None = None) -> Path:
    """Download ``url`` to ``dest`` atomically and return ``dest``.

    The bytes go to a temporary file in ``dest``'s folder; when ``sha256`` (and/or ``md5``) is
    given they are checked, and only a good file is moved to ``dest`` with ``os.replace``. A bad
    checksum removes the temporary file and raises :class:`DataError`; a network failure raises
    :class:`DownloadError` (also leaving nothing behind).
    """
    dest = Path(dest)
    created = _mkdirs(dest.parent)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        h256, hmd5 = hashlib.sha256(), hashlib.md5()
        with os.fdopen(fd, "wb") as out:
            try:
                req = urllib.request.Request(url, headers={"User-Agent": "paradigms-data/0.1"})
                with urllib.request.urlopen(req, timeout=DOWNLOAD_TIMEOUT if timeout is None else timeout) as resp:
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        h256.update(chunk)
                        hmd5.update(chunk)
            except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
                raise DownloadError(f"could not download {url}: {_reason(exc)}") from None
        for name, expected, got in (("sha256", sha256, h256), ("md5", md5, hmd5)):
            if expected is not None and got.hexdigest() != expected.lower():
                raise DataError(f"download of {url} has {name} {got.hexdigest()}, expected {expected}; "
                                f"nothing was written to {dest}; the server may have changed the file: "
                                "get the official file by hand and put it there")
        _publish(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        _rmdirs(created)
        raise
    return dest


def _publish(tmp: str | os.PathLike[str], dest: Path) -> None:
    """Move a fully written, verified temporary file onto its final name in one atomic rename."""
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)


def _extract(archive: Path, wanted: Mapping[str, tuple[Path, str]], url: str) -> None:
    """Extract the ``wanted`` members (``{path suffix: (destination, sha256)}``) of a tar or zip
    archive, each atomically and checked by sha256."""

    def match(member: str) -> str | None:
        member = member.replace("\\", "/").lstrip("./")
        for suffix in wanted:
            if member == suffix or member.endswith("/" + suffix):
                return suffix
        return None

    def place(stream, suffix: str) -> None:
        dest, expected = wanted[suffix]
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
            if h.hexdigest() != expected:
                raise DataError(f"{suffix} in {url} has sha256 {h.hexdigest()}, expected {expected}; "
                                f"nothing was written to {dest}; get the official file by hand and put it there")
            _publish(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        done.add(suffix)

    done: set[str] = set()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if not info.is_dir() and (suffix := match(info.filename)) and suffix not in done:
                        with zf.open(info) as stream:
                            place(stream, suffix)
        else:
            with tarfile.open(archive, "r:*") as tf:
                for info in tf:
                    if info.isfile() and (suffix := match(info.name)) and suffix not in done:
                        place(tf.extractfile(info), suffix)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DownloadError(f"could not read the archive from {url}: {_reason(exc)}") from None
    if missing := sorted(set(wanted) - done):
        raise DataError(f"the archive {url} lacks {len(missing)} needed file(s), e.g. {missing[0]}; "
                        "get the files by hand")


def _missing_error(dataset: str, src: Source, root: Path, missing: Iterable[str], reason: str) -> DataError:
    sums = checksums()
    missing = list(missing)
    shown = [f"{root / src.directory / f} (sha256 {sums[f'{src.directory}/{f}']})" for f in missing[:4]]
    more = f" and {len(missing) - 4} more (sha256s in {checksums_path()})" if len(missing) > 4 else ""
    if src.archive_urls:
        fetch = f"download {src.archive_urls[0]}, extract it"
    elif src.file_urls and len(missing) == 1:
        fetch = f"download {urllib.parse.urljoin(src.file_urls[0], Path(missing[0]).name)}"
    elif src.file_urls:
        fetch = f"download each file from {src.file_urls[0]}<file name>"
    else:
        fetch = "get the files"
    return DataError(
        f"dataset {dataset!r}: {len(missing)} file(s) missing: {', '.join(shown)}{more}; {reason}. "
        f"To fix: {fetch} (see {src.homepage}) and put the files at those paths, "
        f"or choose a data root that has them with --data-dir or $PARADIGMS_DATA (now {root})")


def _fetch(dataset: str, src: Source, root: Path, missing: list[str]) -> None:
    sums = checksums()
    if offline():
        raise _missing_error(dataset, src, root, missing, "$PARADIGMS_OFFLINE is set, so nothing was downloaded")
    if src.archive_urls:
        wanted = {f: (root / src.directory / f, sums[f"{src.directory}/{f}"]) for f in missing}
        errors = []
        for url in src.archive_urls:
            name = Path(urllib.parse.urlparse(url).path).name or "archive"
            created = _mkdirs(root / src.directory)
            with tempfile.TemporaryDirectory(dir=root / src.directory, prefix=".download-") as tmpdir:
                try:
                    archive = download(url, Path(tmpdir) / name, md5=src.archive_md5)
                    _extract(archive, wanted, url)
                    return
                except DataError as exc:
                    errors.append(str(exc))
                    wanted = {f: v for f, v in wanted.items() if not v[0].is_file()}
            _rmdirs(created)
        raise _missing_error(dataset, src, root, list(wanted), "downloading failed: " + " / ".join(errors))
    for i, f in enumerate(missing):
        dest, expected = root / src.directory / f, sums[f"{src.directory}/{f}"]
        errors = []
        for base in src.file_urls:
            try:
                download(urllib.parse.urljoin(base, Path(f).name), dest, expected)
                break
            except DataError as exc:
                errors.append(str(exc))
        else:
            # one file failed from every source: the others would too, so stop here (fail fast)
            raise _missing_error(dataset, src, root, missing[i:], "downloading failed: " + " / ".join(errors))


def where(name: str, data_dir: str | os.PathLike[str] | None = None) -> dict:
    """Where dataset ``name``'s files go and whether they are there: ``{"folder", "files", "missing", "fetch"}``
    (``folder`` None for a dataset with no files under the data root: embedded, or your own path)."""
    from .registry import lookup

    info = lookup(name)
    src = info.source
    if src is None:
        return {"folder": None, "files": 0, "missing": 0, "fetch": ""}
    folder = data_root(data_dir) / src.directory
    missing = [f for f in src.files if not (folder / f).is_file()]
    fetch = src.archive_urls[0] if src.archive_urls else src.file_urls[0] if src.file_urls else src.homepage
    return {"folder": folder, "files": len(src.files), "missing": len(missing), "fetch": fetch}


def require(dataset: str, data_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Make sure every file of ``dataset`` is under the data root with the right sha256.

    Returns ``{path relative to the dataset folder: absolute path}`` (e.g.
    ``{"train-images-idx3-ubyte.gz": Path(...)}``). Missing files are downloaded unless
    ``$PARADIGMS_OFFLINE=1``; a file with the wrong sha256 raises :class:`DataError` (never
    overwritten); a failed download raises one :class:`DataError` naming the missing paths, their
    sha256, the canonical URL and how to choose another root.
    """
    info = lookup(dataset)
    if info.source is None:
        raise UserError(f"dataset {info.display!r} has no files under the data root; "
                        "only these do: " + ", ".join(d.name for d in DATASETS if d.source is not None))
    dataset, src = info.name, info.source
    root = data_root(data_dir)
    sums = checksums()
    paths: dict[str, Path] = {}
    missing: list[str] = []
    for f in src.files:
        path = root / src.directory / f
        paths[f] = path
        if path.is_file():
            verify(path, sums[f"{src.directory}/{f}"], src.homepage)
        elif path.exists():
            raise DataError(f"{path} should be a data file but is a folder; remove it and run again")
        else:
            missing.append(f)
    if missing:
        _fetch(dataset, src, root, missing)
    return paths

