"""Downloading MNIST and Fashion-MNIST: verified, atomic, urllib only.

Each file is fetched from a mirror (``<mirror>/<file name>``) into a temporary file next to its
destination (``.<name>.<random>.part``), checked, and only then renamed into place with
``os.replace`` (atomic on one file system). Whatever goes wrong, including Ctrl-C, the
temporary file is removed, so the cache directory only ever holds complete, verified files.
SIGTERM (and SIGHUP, or SIGINT where Python's Ctrl-C handler is not installed) would end the
process without that clean-up, so for the duration of a download, in the main thread and only
where such a signal would otherwise kill the process outright, a handler turns it into
``DownloadInterrupted``, a ``KeyboardInterrupt``: callers handle Ctrl-C and SIGTERM with one
``except KeyboardInterrupt`` (exit status ``128 + signum``), and the previous handler is restored.

A mirror is not trusted to behave, so each transfer is bounded before its bytes are checked:
  * size: a body announced (``Content-Length``) or sent beyond the published size is refused as
    soon as that is known; nothing past the published size + 1 byte is read;
  * time: a total ``deadline`` (default 30 min) and, after a ``rate_grace`` period (default 30 s),
    a minimum average rate ``min_rate`` (default 1 KiB/s), so a server that trickles one byte
    every few seconds (each read well inside the per-read ``timeout``) cannot hold a download
    open forever. Both are checked before every read, and one read waits at most ``timeout``, so a
    transfer ends at most ``timeout`` seconds past its deadline.

Checks on each completed download, in order:
  1. the byte count equals the ``Content-Length`` header when the server sent one
     (``http.client`` returns a short body without complaint when a connection drops);
  2. the byte count equals the published file size;
  3. the MD5 published by the dataset's authors and, where known, the SHA-256 match.
A failure raises ``DownloadError`` (``ChecksumError`` for step 3) naming the URL and, for a
checksum, the expected and the received digest.

Mirrors: the ``mirror`` argument, else the ``SCRATCHGEN_MIRROR`` environment variable, else the
public defaults below, tried in order. A mirror is a base URL (``https://``, ``http://`` or
``file://``); the text ``{dataset}`` in it is replaced by the dataset name, so one variable can
serve both datasets from a local mirror laid out as ``<base>/mnist/``, ``<base>/fashion-mnist/``.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DownloadError", "ChecksumError", "DownloadInterrupted", "RemoteFile", "REMOTE_FILES", "DEFAULT_MIRRORS",
    "default_data_root", "mirrors_for", "file_digests", "verify_file", "download_file", "download_dataset",
]

MIRROR_ENV = "SCRATCHGEN_MIRROR"
DATA_ENV = "SCRATCHGEN_DATA"


@dataclass(frozen=True)
class RemoteFile:
    """A published file: its name, size in bytes, MD5 (as published) and SHA-256 (None if unknown)."""

    name: str
    size: int
    md5: str
    sha256: str | None = None


# MNIST: MD5s as listed by torchvision's MNIST loader; SHA-256s as listed by TensorFlow/Keras-era
# loaders. Both digests of the two t10k files were checked against /work/shared/data/mnist/, whose
# README quotes the same MD5s.
# Fashion-MNIST: sizes and MD5s from the table in Zalando Research's README. No SHA-256 is published.
# Debian's dataset-fashion-mnist package ships *re-compressed* .gz files (same images, gzip header
# without the original file name, so each file is 23-24 bytes shorter): they do not match these
# digests, which is why local directories are validated by their IDX structure, not by checksum.
REMOTE_FILES = {
    "mnist": (
        RemoteFile("train-images-idx3-ubyte.gz", 9_912_422, "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                   "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        RemoteFile("train-labels-idx1-ubyte.gz", 28_881, "d53e105ee54ea40749a09fcbcd1e9432",
                   "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        RemoteFile("t10k-images-idx3-ubyte.gz", 1_648_877, "9fb629c4189551a2d022fa330f9573f3",
                   "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", 4_542, "ec29112dd5afa0611ce80d1b7f02629c",
                   "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ),
    "fashion-mnist": (
        RemoteFile("train-images-idx3-ubyte.gz", 26_421_880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        RemoteFile("train-labels-idx1-ubyte.gz", 29_515, "25c81989df183df01b3e8a0aad5dffbe"),
        RemoteFile("t10k-images-idx3-ubyte.gz", 4_422_102, "bef4ecab320f06d8554ea6380940ec79"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", 5_148, "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
}

# Public mirrors, HTTPS first. The original MNIST host (yann.lecun.com) is left out: it has been
# refusing scripted downloads for years. Checksums, not the transport, vouch for the bytes.
DEFAULT_MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
}

_CHUNK_BYTES = 1 << 20

DEFAULT_DEADLINE = 1800.0      # seconds for one file, all reads together
DEFAULT_MIN_RATE = 1024.0      # bytes per second on average, once rate_grace has passed
DEFAULT_RATE_GRACE = 30.0      # seconds before min_rate applies (connection set-up, slow start)


class DownloadError(OSError):
    """A download failed (network, HTTP status, short or oversized transfer, too slow) or every mirror failed."""


class ChecksumError(DownloadError):
    """The downloaded bytes are not the published file."""


class DownloadInterrupted(KeyboardInterrupt):
    """A download was stopped by a signal (SIGTERM, SIGHUP, ...); its temporary file is gone.

    A ``KeyboardInterrupt`` so that one ``except KeyboardInterrupt`` handles Ctrl-C and SIGTERM
    alike; ``signum`` says which signal, and a command-line tool exits with ``128 + signum``.
    """

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


@contextlib.contextmanager
def _signals_raise(url: str):
    """For the ``with`` block, make the signals that would kill the process raise ``DownloadInterrupted``.

    Only where the handler is SIG_DFL (a process that ignores a signal, or handles it itself, keeps
    doing so) and only in the main thread (Python runs signal handlers there and nowhere else).
    The previous handlers are restored on the way out.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise DownloadInterrupted(signum, f"{url}: download stopped by {signal.Signals(signum).name}")

    previous = {}
    try:
        for name in ("SIGTERM", "SIGHUP", "SIGINT"):
            signum = getattr(signal, name, None)
            if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
                try:
                    previous[signum] = signal.signal(signum, interrupt)
                except ValueError:  # not the main interpreter: its signals are not ours to handle
                    break
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def default_data_root() -> Path:
    """Where datasets are downloaded: ``$SCRATCHGEN_DATA`` (its first entry), else ~/.cache/scratchgen."""
    configured = [entry for entry in os.environ.get(DATA_ENV, "").split(os.pathsep) if entry]
    if configured:
        return Path(configured[0]).expanduser()
    return Path.home() / ".cache" / "scratchgen"


def mirrors_for(name: str, mirror=None) -> tuple:
    """The base URLs to try for dataset ``name``: ``mirror`` (a URL or a list), else $SCRATCHGEN_MIRROR
    (URLs separated by whitespace or commas), else ``DEFAULT_MIRRORS[name]``."""
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV, "").replace(",", " ").split() or DEFAULT_MIRRORS[name]
    elif isinstance(mirror, (str, os.PathLike)):
        mirror = [mirror]
    return tuple(str(base).replace("{dataset}", name) for base in mirror)


def file_digests(path) -> dict:
    """``{"md5": ..., "sha256": ...}`` of a file, in one pass."""
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            md5.update(chunk)
            sha256.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def _digest_mismatch(digests: dict, spec: RemoteFile):
    """The first (algorithm, expected, got) that fails, or None when every known digest matches."""
    for algorithm in ("sha256", "md5"):
        expected = getattr(spec, algorithm)
        if expected is not None and digests[algorithm] != expected.lower():
            return algorithm, expected, digests[algorithm]
    return None


def verify_file(path, spec: RemoteFile) -> bool:
    """True when ``path`` exists and has the published size and digests of ``spec``."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size != spec.size:
        return False
    return _digest_mismatch(file_digests(path), spec) is None


def _check_pace(url: str, spec: RemoteFile, received: int, started: float, deadline, min_rate, rate_grace):
    """Raise ``DownloadError`` when the transfer has run past ``deadline`` or, after ``rate_grace``
    seconds, averages less than ``min_rate`` bytes per second (None switches either check off)."""
    elapsed = time.monotonic() - started
    done = f"received {received} of {spec.size} bytes in {elapsed:.1f} s"
    if deadline is not None and elapsed > deadline:
        raise DownloadError(f"{url}: not finished within the deadline of {deadline:g} s ({done})")
    if min_rate is not None and elapsed > rate_grace and received / elapsed < min_rate:
        raise DownloadError(f"{url}: too slow: {received / elapsed:.1f} bytes/s on average, below the minimum "
                            f"of {min_rate:g} bytes/s (min_rate, after a grace of {rate_grace:g} s; {done})")


def download_file(url: str, dest, spec: RemoteFile, timeout: float = 60.0, progress=None, *,
                  deadline: float | None = DEFAULT_DEADLINE, min_rate: float | None = DEFAULT_MIN_RATE,
                  rate_grace: float = DEFAULT_RATE_GRACE) -> Path:
    """Fetch ``url`` to ``dest`` through a temporary file; verify against ``spec``; rename into place.

    timeout: seconds one network operation (connect, one read) may wait.
    deadline: seconds the whole file may take (None: no limit).
    min_rate: bytes per second the transfer must average once ``rate_grace`` seconds have passed
    (None: no minimum). ``progress(bytes_so_far, bytes_expected)`` is called after every chunk if given.
    Raises ``DownloadError`` / ``ChecksumError``; ``dest`` is then untouched and no partial file
    remains. Ctrl-C raises ``KeyboardInterrupt``, and SIGTERM ``DownloadInterrupted`` (also a
    ``KeyboardInterrupt``), likewise leaving no partial file.
    """
    for what, value in (("deadline", deadline), ("min_rate", min_rate)):
        if value is not None and not value > 0:
            raise ValueError(f"download_file: {what} must be > 0 or None, got {value!r}")
    if not rate_grace >= 0:
        raise ValueError(f"download_file: rate_grace must be >= 0, got {rate_grace!r}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _signals_raise(url):
        handle = tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False)
        temporary = Path(handle.name)
        try:
            with handle:
                announced, received = _transfer(url, handle, spec, timeout, progress, deadline, min_rate, rate_grace)
                handle.flush()
                os.fsync(handle.fileno())
            if announced is not None and received != announced:
                raise DownloadError(f"{url}: transfer interrupted: server announced {announced} bytes, "
                                    f"received {received}")
            if received != spec.size:
                raise DownloadError(f"{url}: received {received} bytes, the published {spec.name} has {spec.size}")
            mismatch = _digest_mismatch(file_digests(temporary), spec)
            if mismatch is not None:
                algorithm, expected, got = mismatch
                raise ChecksumError(f"{url}: {algorithm} checksum mismatch: expected {expected}, got {got}")
            os.replace(temporary, dest)
        except BaseException:
            # Any failure, KeyboardInterrupt and DownloadInterrupted included: leave no half-written file.
            temporary.unlink(missing_ok=True)
            raise
    return dest


def _transfer(url, handle, spec: RemoteFile, timeout, progress, deadline, min_rate, rate_grace) -> tuple:
    """Copy the body of ``url`` into ``handle`` within the size and time limits; (announced length, bytes received)."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            announced = int(announced) if announced is not None and announced.strip().isdigit() else None
            if announced is not None and announced > spec.size:
                raise DownloadError(f"{url}: server announces {announced} bytes, more than the published "
                                    f"{spec.size} bytes of {spec.name}; not downloading")
            # read1 returns what one read brings, so the limits are checked even when bytes trickle in
            # (read(n) would wait for all n of them).
            read = getattr(response, "read1", None) or response.read
            received = 0
            while True:
                _check_pace(url, spec, received, started, deadline, min_rate, rate_grace)
                # Never ask for more than one byte past the published size.
                chunk = read(min(_CHUNK_BYTES, spec.size + 1 - received))
                if not chunk:
                    break
                received += len(chunk)
                if received > spec.size:
                    raise DownloadError(f"{url}: server sends more than the published {spec.size} bytes of "
                                        f"{spec.name}; stopped reading there")
                handle.write(chunk)
                if progress is not None:
                    progress(received, spec.size)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        if isinstance(exc, DownloadError):
            raise
        # URLError (an OSError) covers HTTP statuses such as 404 and unreachable hosts;
        # OSError also covers resets and timeouts; ValueError a malformed URL;
        # HTTPException a protocol violation such as IncompleteRead.
        raise DownloadError(f"{url}: download failed ({type(exc).__name__}: {exc})") from exc
    return announced, received


def download_dataset(name: str, root=None, mirror=None, files=None, timeout: float = 60.0,
                     verbose: bool = True, *, deadline: float | None = DEFAULT_DEADLINE,
                     min_rate: float | None = DEFAULT_MIN_RATE, rate_grace: float = DEFAULT_RATE_GRACE) -> Path:
    """Make sure ``<root>/<name>/`` holds the verified IDX .gz files of ``name``; return that directory.

    name: "mnist" or "fashion-mnist". root: defaults to ``default_data_root()``.
    mirror: a base URL or list of them (default: ``mirrors_for(name)``).
    files: restrict to these file names (default: all four). Files already present and verified
    are kept; others are (re)downloaded, trying each mirror in turn. If every mirror fails for a
    file, the error of the only mirror, or a ``DownloadError`` listing all of them, is raised.
    timeout, deadline, min_rate, rate_grace: the limits of each file's transfer (``download_file``);
    a mirror that breaks one is left for the next.
    """
    if name not in REMOTE_FILES:
        raise ValueError(f"download_dataset: no download known for {name!r}; "
                         f"downloadable datasets: {', '.join(sorted(REMOTE_FILES))}")
    specs = REMOTE_FILES[name]
    if files is not None:
        wanted = set(files)
        unknown = wanted - {spec.name for spec in specs}
        if unknown:
            raise ValueError(f"download_dataset: {name} has no files {sorted(unknown)}; "
                             f"its files are {[spec.name for spec in specs]}")
        specs = tuple(spec for spec in specs if spec.name in wanted)
    directory = Path(root).expanduser() / name if root is not None else default_data_root() / name
    bases = mirrors_for(name, mirror)
    for spec in specs:
        dest = directory / spec.name
        if verify_file(dest, spec):
            continue
        failures = []
        for base in bases:
            url = base.rstrip("/") + "/" + spec.name
            if verbose:
                print(f"scratchgen: downloading {url} -> {dest}", file=sys.stderr)
            try:
                download_file(url, dest, spec, timeout=timeout, deadline=deadline, min_rate=min_rate,
                              rate_grace=rate_grace)
                break
            except DownloadError as exc:
                failures.append(exc)
        else:
            if len(failures) == 1:
                raise failures[0]
            raise DownloadError(f"could not download {spec.name} from any mirror:\n  "
                                + "\n  ".join(str(exc) for exc in failures))
    return directory
