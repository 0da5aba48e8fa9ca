"""The IDX file format (MNIST, Fashion-MNIST): a strict reader and a writer.

Layout of an IDX file (all integers big-endian)::

    byte 0-1   0x00 0x00                      every IDX file starts with two zero bytes
    byte 2     type code                      0x08 uint8, 0x09 int8, 0x0B int16,
                                              0x0C int32, 0x0D float32, 0x0E float64
    byte 3     ndim                           e.g. 3 for images (N, H, W), 1 for labels (N,)
    4 bytes    size of dimension 0            ... one uint32 per dimension
    rest       prod(dims) values, row-major (C order), big-endian

MNIST's ``t10k-images-idx3-ubyte`` therefore starts ``00 00 08 03`` then 10000, 28, 28, and holds
exactly 16 + 7,840,000 bytes. The reader checks every one of those facts and raises
``DataFileError`` (a ``ValueError``) naming the file and the fact that failed, so a truncated
download or a wrong file never turns into silently wrong training data.

Files may be gzip-compressed (as published) or raw; the reader looks at the content (gzip's
``1f 8b`` signature), not at the file name.

Files come from outside (downloads, other people's directories), so the reader trusts nothing in
them before it has checked it, and it never holds more memory than the header implies:

* it reads the header first, through the (decompressing) stream, and computes the data size from
  the dimensions in Python integers (an int64 product of 65536 x 65536 x 4 ... wraps round to 0);
* a header implying more than ``MAX_IDX_BYTES`` (2 GiB; MNIST's largest file holds 47 MB, the
  largest EMNIST file 640 MB) is refused before any data is read: no real IDX file is that
  large, and a gzip bomb (a small ``.gz`` of zeros behind a header claiming 1e9 images) is
  refused at once instead of after inflating gigabytes;
* a raw file's data size is compared with its size on disk before anything is allocated; a gzip
  file is refused when its header implies more than deflate can produce from the file's bytes
  (at most 1032-fold), and otherwise inflated only up to the size the header implies (plus a
  little, to tell "exactly right" from "extra data").
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["DataFileError", "read_idx", "write_idx", "IDX_TYPE_CODES", "MAX_IDX_BYTES"]

# IDX type code -> big-endian NumPy dtype of the stored values.
IDX_TYPE_CODES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND = {(dtype.kind, dtype.itemsize): code for code, dtype in IDX_TYPE_CODES.items()}
_GZIP_SIGNATURE = b"\x1f\x8b"

# The largest data section (bytes after the header) read_idx accepts by default; see the module doc.
MAX_IDX_BYTES = 2 * 1024**3
# Deflate turns each bit into at most 516 bytes (a 258-byte match coded in 2 bits), so a gzip file
# of S bytes inflates to at most 1032 * S bytes. A header that implies more is lying.
_MAX_DEFLATE_RATIO = 1032
_CHUNK_BYTES = 1 << 20          # inflate this much at a time
_EXTRA_COUNT_LIMIT = 1 << 16    # how far past the expected end extra data is counted


class DataFileError(ValueError):
    """A data file is missing a piece, corrupt, or not what its name says. ``path`` names it."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _read_up_to(stream, count: int) -> bytes:
    """At most ``count`` bytes from ``stream``: fewer only at the end of the (decompressed) data."""
    pieces, missing = [], count
    while missing > 0:
        piece = stream.read(min(missing, _CHUNK_BYTES))
        if not piece:
            break
        pieces.append(piece)
        missing -= len(piece)
    return b"".join(pieces)


def _read_into(stream, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``stream`` a chunk at a time; the number of bytes that arrived."""
    filled = 0
    while filled < len(buffer):
        count = stream.readinto(buffer[filled:filled + _CHUNK_BYTES])
        if not count:
            break
        filled += count
    return filled


def _read_growing(stream, limit: int) -> bytearray:
    """At most ``limit`` bytes from ``stream`` in a buffer that grows as they arrive: a header's
    promise of many bytes allocates nothing until the bytes are really there."""
    data = bytearray()
    while len(data) < limit:
        piece = stream.read(min(limit - len(data), _CHUNK_BYTES))
        if not piece:
            break
        data += piece
    return data


def _count_rest(stream, limit: int) -> tuple:
    """(bytes left in ``stream``, whether that is exact): counts at most ``limit`` bytes, holds none."""
    counted = 0
    while counted <= limit:
        piece = stream.read(min(_CHUNK_BYTES, limit + 1 - counted))
        if not piece:
            return counted, True
        counted += len(piece)
    return counted, False


def _shape_text(dims) -> str:
    return "x".join(str(d) for d in dims) if dims else "(scalar)"


def read_idx(path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a writable, native-byte-order NumPy array.

    Returns shape ``dims`` from the header, dtype from the type code (uint8 for MNIST).
    Raises ``DataFileError`` (naming the file) for: a missing or unreadable file, an empty file, a
    broken or truncated gzip stream, a header shorter than it says, a magic number that does not
    start with two zero bytes, an unknown type code, zero dimensions, a header implying more than
    ``max_bytes`` bytes of data, and a data section whose byte length is not exactly
    ``prod(dims) * itemsize`` (too short *or* too long). Memory use stays within the size the
    header implies, whatever the file holds (see the module docstring).
    """
    path = Path(path)
    try:
        is_file = path.is_file()
    except OSError:  # e.g. a directory on the way that may not be searched: open() says why below
        is_file = True
    if not is_file:
        raise DataFileError(path, "no such file")
    file_bytes = 0
    try:
        with open(path, "rb") as raw:
            file_bytes = os.fstat(raw.fileno()).st_size
            compressed = raw.read(2) == _GZIP_SIGNATURE
            raw.seek(0)
            if not compressed:
                return _read_idx_stream(raw, path, max_bytes, file_bytes=file_bytes)
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _read_idx_stream(stream, path, max_bytes, gzip_bytes=file_bytes)
    except EOFError:
        # gzip raises EOFError when the compressed stream stops early: a truncated .gz file.
        raise DataFileError(path, f"gzip stream ends early ({file_bytes} compressed bytes); "
                                  "the file is truncated") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataFileError(path, f"broken gzip stream ({exc})") from None
    except OSError as exc:
        # Permission denied, an I/O error, ...: the file exists but cannot be read.
        raise DataFileError(path, f"cannot read the file ({type(exc).__name__}: {exc.strerror or exc})") from None


def _read_idx_stream(stream, path: Path, max_bytes: int, file_bytes=None, gzip_bytes=None) -> np.ndarray:
    """The checks of ``read_idx`` on an open stream: raw (``file_bytes`` = size on disk) or inflating
    a gzip file (``gzip_bytes`` = its compressed size)."""
    head = _read_up_to(stream, 4)
    if len(head) < 4:
        raise DataFileError(path, f"file holds {len(head)} bytes, too short for the 4-byte IDX magic number")
    zero0, zero1, type_code, ndim = head
    if zero0 != 0 or zero1 != 0:
        raise DataFileError(path, f"bad magic number 0x{head.hex()}: an IDX file starts with two "
                                  "zero bytes (0x0000TTNN: type code TT, number of dimensions NN)")
    if type_code not in IDX_TYPE_CODES:
        known = ", ".join(f"0x{code:02X} {dtype.name}" for code, dtype in IDX_TYPE_CODES.items())
        raise DataFileError(path, f"unknown IDX data type code 0x{type_code:02X} (known: {known})")
    if ndim == 0:
        raise DataFileError(path, "header declares 0 dimensions")

    header_bytes = 4 + 4 * ndim
    dims_bytes = _read_up_to(stream, 4 * ndim)
    if len(dims_bytes) < 4 * ndim:
        raise DataFileError(path, f"header declares {ndim} dimensions ({header_bytes} header bytes) "
                                  f"but the file holds only {4 + len(dims_bytes)} bytes")
    dims = struct.unpack(f">{ndim}I", dims_bytes)

    dtype = IDX_TYPE_CODES[type_code]
    # Python ints: the product of up to 255 uint32 sizes cannot wrap round.
    expected = math.prod(dims) * dtype.itemsize
    per_value = "" if dtype.itemsize == 1 else f" {dtype.name} values of {dtype.itemsize} bytes"
    says = f"header says {_shape_text(dims)}{per_value} = {expected} bytes of data"

    if file_bytes is not None and file_bytes - header_bytes != expected:
        # A raw file: its size on disk settles the question before anything is read.
        raise DataFileError(path, f"{says}, file holds {file_bytes - header_bytes}")
    if expected > max_bytes:
        raise DataFileError(path, f"{says}, more than the {max_bytes} bytes one IDX file may hold "
                                  f"(read_idx max_bytes; no real dataset file is that large)")
    if gzip_bytes is not None and header_bytes + expected > _MAX_DEFLATE_RATIO * gzip_bytes:
        raise DataFileError(path, f"{says}, but a gzip file of {gzip_bytes} bytes inflates to at most "
                                  f"{_MAX_DEFLATE_RATIO * gzip_bytes} bytes: the header is wrong or the file "
                                  "is truncated")

    if file_bytes is not None:
        data = np.empty(expected, dtype=np.uint8)   # the file on disk has exactly this many bytes
        actual = _read_into(stream, memoryview(data))
    else:
        data = _read_growing(stream, expected)
        actual = len(data)
    if actual == expected:
        # One byte too many is as wrong as one too few; count (without keeping) what follows.
        extra, exact = _count_rest(stream, _EXTRA_COUNT_LIMIT)
        if extra:
            holds = f"{expected + extra}" if exact else f"more than {expected + _EXTRA_COUNT_LIMIT}"
            raise DataFileError(path, f"{says}, file holds {holds}")
    else:
        raise DataFileError(path, f"{says}, file holds {actual}")

    try:
        values = np.frombuffer(data, dtype=dtype).reshape(dims)
    except ValueError as exc:
        # A zero dimension beside absurd ones (0 x 4e9 x 4e9), or more dimensions than NumPy allows.
        raise DataFileError(path, f"header shape {_shape_text(dims)} cannot be a NumPy array ({exc})") from None
    if not dtype.isnative:
        # Swap in place and relabel: the result is in the machine's byte order without a copy.
        values = values.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return values


def write_idx(path, array) -> Path:
    """Write ``array`` as an IDX file; gzip-compressed when ``path`` ends in ``.gz``.

    Supported dtypes: uint8, int8, int16, int32, float32, float64 (anything else raises
    ``TypeError``: IDX has no code for it). The gzip header carries no timestamp, so the same
    array always gives the same bytes. Returns the path.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _CODE_OF_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None or array.dtype.kind == "b":
        raise TypeError(f"write_idx: IDX cannot store dtype {array.dtype}; "
                        "use uint8, int8, int16, int32, float32 or float64")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: IDX needs 1 to 255 dimensions, got shape {array.shape}")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"write_idx: dimension sizes must fit in uint32, got shape {array.shape}")

    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = np.ascontiguousarray(array, dtype=IDX_TYPE_CODES[code]).tobytes()
    if path.name.endswith(".gz"):
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(header)
            gz.write(payload)
    else:
        with open(path, "wb") as handle:
            handle.write(header)
            handle.write(payload)
    return path

