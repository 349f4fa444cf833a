"""Pinned public data files: read from a data dir, from the cache, or downloaded and verified.

Why pinned: a benchmark file that changes upstream silently changes the audit, and a result must
be reproducible from its report. Every file the public loaders read is declared as a `DataFile`:
the upstream URL at a fixed commit, its byte size and its SHA-256 (DESIGN §9). The bytes are used
only when they match the pin, wherever they come from.

Resolution order for one file (``<dataset>/<path>``, the layout of ``shared/data``):

1. the data dir — ``--data-dir DIR`` (:func:`set_data_dir`) or ``TRUSTDIFF_DATA_DIR``: a file
   there that differs from its pin is an error (the user pointed us at it; silently downloading
   something else would hide the problem);
2. the cache — ``TRUSTDIFF_CACHE_DIR``, else ``$XDG_CACHE_HOME/trustdiff/data``, else
   ``~/.cache/trustdiff/data``: a cached file that fails its check is ignored and replaced;
3. a download with httpx from the pinned URL — or, when ``TRUSTDIFF_DATA_MIRROR`` is set, from
   ``<mirror>/<dataset>/<path>`` instead (a mirror is laid out like a data dir, e.g. an internal
   HTTP server; tests use a loopback one). The body is streamed to a temporary file in the cache
   directory, checked (size, SHA-256) and renamed into place atomically, so a failed, truncated
   or tampered download never leaves a file that a later run could trust.

Every failure is a one-line :class:`~trustdiff.errors.DataError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from trustdiff.errors import DataError

ENV_DATA_DIR = "TRUSTDIFF_DATA_DIR"
ENV_CACHE_DIR = "TRUSTDIFF_CACHE_DIR"
ENV_MIRROR = "TRUSTDIFF_DATA_MIRROR"
TIMEOUT_S = 60.0
"""Connect / read timeout of one download, seconds."""
_CHUNK = 1 << 16


@dataclass(frozen=True)
class DataFile:
    """One pinned upstream file."""

    dataset: str
    """Folder in a data dir / the cache (the ``shared/data`` layout), e.g. ``bbq``."""
    path: str
    """Path inside that folder, e.g. ``Age.jsonl``."""
    url: str
    """Upstream URL at a fixed commit."""
    sha256: str
    """SHA-256 of the pinned bytes (hex)."""
    size: int
    """Byte size of the pinned bytes (catches a truncated body early)."""

    @property
    def key(self) -> str:
        """``<dataset>/<path>``: where the file lives under a data dir, the cache or a mirror."""
        return f"{self.dataset}/{self.path}"


def github_raw(repo: str, commit: str, path: str) -> str:
    """raw.githubusercontent.com URL of `path` in `repo` at `commit` (path percent-encoded)."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{quote(path)}"


_data_dir: Path | None = None


def _check_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        state = "does not exist" if not path.exists() else "is not a directory"
        raise DataError(f"{what} {path} {state}")
    return path


def set_data_dir(path: Path | str | None) -> None:
    """Use `path` (laid out like ``shared/data``) before the cache; None restores the default."""
    global _data_dir
    _data_dir = None if path is None else _check_dir(Path(path).expanduser(), "data dir")


def data_dir() -> Path | None:
    """The data dir in effect: :func:`set_data_dir`, else ``TRUSTDIFF_DATA_DIR``, else None."""
    if _data_dir is not None:
        return _data_dir
    env = os.environ.get(ENV_DATA_DIR)
    return _check_dir(Path(env).expanduser(), f"{ENV_DATA_DIR}") if env else None


def cache_dir() -> Path:
    """Where downloads are kept (created on first download)."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "trustdiff" / "data"


_verified: dict[tuple[str, int, int], str] = {}
"""(path, size, mtime_ns) → SHA-256, so a file is hashed once per process."""


def _digest(path: Path) -> tuple[int, str]:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        _verified[key] = h.hexdigest()
    return st.st_size, _verified[key]


def _matches(f: DataFile, path: Path) -> bool:
    size, sha = _digest(path)
    return size == f.size and sha == f.sha256


def locate(f: DataFile) -> Path | None:
    """The verified local copy (data dir first, then cache), or None; never downloads.

    Raises DataError when the data dir holds the file with other bytes than the pin.
    """
    root = data_dir()
    if root is not None:
        candidate = root / f.key
        if candidate.is_file():
            if not _matches(f, candidate):
                size, sha = _digest(candidate)
                raise DataError(
                    f"{candidate}: SHA-256 {sha[:12]}… ({size} bytes) differs from the pinned "
                    f"{f.sha256[:12]}… ({f.size} bytes) of {f.url}"
                )
            return candidate
    cached = cache_dir() / f.key
    if cached.is_file() and _matches(f, cached):
        return cached
    return None


def fetch(f: DataFile) -> Path:
    """Path of a verified copy of `f`, downloading it into the cache when there is none."""
    found = locate(f)
    if found is not None:
        return found
    target = cache_dir() / f.key
    mirror = os.environ.get(ENV_MIRROR)
    url = f"{mirror.rstrip('/')}/{quote(f.key)}" if mirror else f.url
    try:
        download(f, url, target)
    except DataError as exc:
        root = data_dir()
        where = f"not in data dir {root}; " if root is not None else ""
        raise DataError(f"{f.key}: {where}{exc}") from None
    return target


def read_text(f: DataFile) -> str:
    """The verified file decoded as UTF-8 (a BOM is dropped)."""
    path = fetch(f)
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def download(f: DataFile, url: str, target: Path) -> None:
    """Stream `url` into `target` atomically, or raise DataError and leave nothing behind."""
    import httpx

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
    except OSError as exc:
        raise DataError(f"cannot write to the cache {target.parent}: {_one_line(exc)}") from None
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        received = 0
        with (
            os.fdopen(fd, "wb") as out,
            httpx.stream(
                "GET", url, timeout=httpx.Timeout(TIMEOUT_S), follow_redirects=True
            ) as resp,
        ):
            if resp.status_code != 200:
                raise DataError(f"download from {url} failed: HTTP {resp.status_code}")
            for chunk in resp.iter_bytes(_CHUNK):
                received += len(chunk)
                if received > f.size:
                    raise DataError(f"download from {url} is larger than the pinned {f.size} bytes")
                h.update(chunk)
                out.write(chunk)
        if received != f.size:
            raise DataError(
                f"download from {url} is truncated: {received} of {f.size} bytes arrived"
            )
        if h.hexdigest() != f.sha256:
            raise DataError(
                f"download from {url}: SHA-256 {h.hexdigest()[:12]}… differs from the pinned "
                f"{f.sha256[:12]}…"
            )
        os.replace(tmp, target)
    except httpx.HTTPError as exc:
        raise DataError(f"download from {url} failed: {_one_line(exc)}") from None
    except OSError as exc:
        raise DataError(f"download from {url} could not be saved: {_one_line(exc)}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
