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
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["DataFileError", "read_idx", "write_idx", "IDX_TYPE_CODES"]

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


class DataFileError(ValueError):
    """A data file is missing a piece, corrupt, or not what its name says. ``path`` names it."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it is gzip; a broken gzip stream is a DataFileError."""
    with open(path, "rb") as handle:
        content = handle.read()
    if not content.startswith(_GZIP_SIGNATURE):
        return content
    try:
        return gzip.decompress(content)
    except EOFError:
        # gzip raises EOFError when the compressed stream stops early: a truncated .gz file.
        raise DataFileError(path, f"gzip stream ends early ({len(content)} compressed bytes); "
                                  "the file is truncated") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise DataFileError(path, f"broken gzip stream ({exc})") from None


def _shape_text(dims) -> str:
    return "x".join(str(d) for d in dims) if dims else "(scalar)"


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a writable, native-byte-order NumPy array.

    Returns shape ``dims`` from the header, dtype from the type code (uint8 for MNIST).
    Raises ``DataFileError`` (naming the file) for: an empty file, a broken or truncated gzip
    stream, a header shorter than it says, a magic number that does not start with two zero
    bytes, an unknown type code, zero dimensions, and a data section whose byte length is not
    exactly ``prod(dims) * itemsize`` (too short *or* too long).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "no such file")
    content = _read_bytes(path)

    if len(content) < 4:
        raise DataFileError(path, f"file holds {len(content)} bytes, too short for the 4-byte IDX magic number")
    zero0, zero1, type_code, ndim = content[:4]
    if zero0 != 0 or zero1 != 0:
        raise DataFileError(path, f"bad magic number 0x{content[:4].hex()}: an IDX file starts with two "
                                  "zero bytes (0x0000TTNN: type code TT, number of dimensions NN)")
    if type_code not in IDX_TYPE_CODES:
        known = ", ".join(f"0x{code:02X} {dtype.name}" for code, dtype in IDX_TYPE_CODES.items())
        raise DataFileError(path, f"unknown IDX data type code 0x{type_code:02X} (known: {known})")
    if ndim == 0:
        raise DataFileError(path, "header declares 0 dimensions")

    header_bytes = 4 + 4 * ndim
    if len(content) < header_bytes:
        raise DataFileError(path, f"header declares {ndim} dimensions ({header_bytes} header bytes) "
                                  f"but the file holds only {len(content)} bytes")
    dims = struct.unpack(f">{ndim}I", content[4:header_bytes])

    dtype = IDX_TYPE_CODES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(content) - header_bytes
    if actual != expected:
        per_value = "" if dtype.itemsize == 1 else f" {dtype.name} values of {dtype.itemsize} bytes"
        raise DataFileError(path, f"header says {_shape_text(dims)}{per_value} = {expected} bytes of data, "
                                  f"file holds {actual}")

    values = np.frombuffer(content, dtype=dtype, offset=header_bytes).reshape(dims)
    # astype copies: the result is writable and in the machine's byte order.
    return values.astype(dtype.newbyteorder("="))


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

