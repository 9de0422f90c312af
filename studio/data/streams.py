"""Opening a data file as a stream: compressed files (.gz, .bz2, .xz, .zst, a single-file .zip) unpacked as they are
read, the text encoding detected, and a head that was read once served again to the reader.

Nothing is unpacked to disk or memory whole (except a compressed Parquet file, which pyarrow must seek in: it goes
to a temporary file); an unpacked size over the caller's limit stops the read with the same sentence as a big file.
"""
from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from studio.errors import DataError

COMPRESSIONS = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstandard", ".zip": "zip"}
# The first bytes of each kind, to tell a compressed file that lost its extension.
MAGIC = {b"\x1f\x8b": ".gz", b"BZh": ".bz2", b"\xfd7zXZ\x00": ".xz", b"\x28\xb5\x2f\xfd": ".zst", b"PK\x03\x04": ".zip"}
# What the decompressors raise on damaged data (bz2 raises a plain OSError, handled by the caller's OSError branch).
DAMAGED = (zlib.error, lzma.LZMAError, zipfile.BadZipFile, gzip.BadGzipFile)
# Files a zip tool adds beside the data: never the one file a zip is read for.
ZIP_LITTER = ("__MACOSX/", ".DS_Store", "Thumbs.db")
HEAD_BYTES = 65536
BUFFER = 1 << 20


def split_name(name: str) -> tuple[str, str]:
    """(format suffix, compression suffix): 'a.jsonl.gz' -> ('.jsonl', '.gz'), 'a.csv' -> ('.csv', '')."""
    path = Path(name)
    suffix = path.suffix.lower()
    if suffix in COMPRESSIONS:
        return Path(path.stem).suffix.lower(), suffix
    return suffix, ""


def zip_member(path: Path, label: str) -> str:
    """The name of the one data file inside a zip (zip tools' litter ignored), else DataError."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()
                     and not any(part in i.filename for part in ZIP_LITTER)]
    except (zipfile.BadZipFile, OSError, ValueError):
        raise DataError(f"File {label} is not a valid zip file (damaged or cut off).") from None
    if len(names) != 1:
        listed = ", ".join(f"'{n}'" for n in names[:4]) + (" ..." if len(names) > 4 else "")
        held = f"holds {len(names)} files ({listed})" if names else "holds no file"
        raise DataError(f"File {label} {held}; a zip must hold exactly one data file, so unzip it and load one.")
    return names[0]


@contextmanager
def open_binary(path: Path, compression: str, label: str, limit: tuple[int, str] | None = None,
                member: str = "") -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """(unpacked byte stream, the file on disk); `limit` is (bytes, the sentence past them) for the unpacked size."""
    with path.open("rb") as raw:
        if not compression:
            yield raw, raw
            return
        stream = _unpacker(raw, compression, label, member)
        with stream:
            yield (io.BufferedReader(_Limited(stream, *limit), BUFFER) if limit else stream), raw


def _unpacker(raw: BinaryIO, compression: str, label: str, member: str) -> BinaryIO:
    """A reader of the unpacked bytes of `raw`."""
    if compression == ".gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == ".bz2":
        return bz2.BZ2File(raw)
    if compression == ".xz":
        return lzma.LZMAFile(raw)
    if compression == ".zip":
        return zipfile.ZipFile(raw).open(member)
    try:
        import zstandard
    except ImportError:
        raise DataError(f"File {label} is zstandard-compressed, which needs the zstandard package "
                        "(pip install zstandard), or unpack it first.") from None
    return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw), BUFFER)


class _Limited(io.RawIOBase):
    """Unpacked bytes counted as they pass; past `limit` the read stops with the size-limit sentence."""

    def __init__(self, stream: BinaryIO, limit: int, sentence: str) -> None:
        self.stream, self.limit, self.sentence, self.seen = stream, limit, sentence, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.stream.read(len(buffer))
        self.seen += len(data)
        if self.seen > self.limit:
            raise DataError(self.sentence)
        buffer[:len(data)] = data
        return len(data)


def detect_encoding(opener: Callable[[], AbstractContextManager], label: str) -> str:
    """UTF-16 with a BOM, UTF-8 (BOM allowed), else Windows-1252/Latin-1; a binary file is refused."""
    with opener() as (stream, _):
        head = stream.read(HEAD_BYTES)
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    if b"\x00" in head and not utf16:
        raise _binary(label, head)
    encoding = "utf-16" if utf16 else next((e for e in ("utf-8-sig", "cp1252") if _decodes(opener, e)), "latin-1")
    # Real text has almost no control characters; random or compressed bytes have many.
    sample = head.decode(encoding, errors="ignore")
    if not sample.strip() and len(head) < HEAD_BYTES:
        raise DataError(f"File {label} is empty.")
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f")
    if controls > max(2, len(sample) // 100):
        raise _binary(label, head)
    return encoding


def _binary(label: str, head: bytes) -> DataError:
    """'looks like a binary file', naming the compression when the bytes show one (a file that lost its suffix)."""
    suffix = next((s for magic, s in MAGIC.items() if head.startswith(magic)), None)
    hint = (f": it is {COMPRESSIONS[suffix]}-compressed, so give it the {suffix} extension (such as "
            f"{label[:-1]}{suffix}')" if suffix else "")
    return DataError(f"File {label} looks like a binary file, not UTF-8 or Latin-1 text{hint}.")


def _decodes(opener: Callable[[], AbstractContextManager], encoding: str) -> bool:
    """Whether the whole file decodes as `encoding`, checked in chunks (a late bad byte must not surprise us)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with opener() as (stream, _):
            while chunk := stream.read(1 << 22):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


class Replay:
    """A text stream whose first characters were already read: they are served again, then the rest of it."""

    def __init__(self, head: str, rest: io.TextIOBase) -> None:
        self.head, self.rest = head, rest

    def read(self, n: int = -1) -> str:
        """Up to n characters (all that is left when n < 0), the replayed head first."""
        if not self.head:
            return self.rest.read(n)
        if n < 0:
            out, self.head = self.head + self.rest.read(), ""
            return out
        out, self.head = self.head[:n], self.head[n:]
        return out

    def __iter__(self) -> Iterator[str]:
        head, self.head = self.head, ""
        if head:
            yield from io.StringIO(head + self.rest.readline(), newline="")  # the head's last line completed
        yield from self.rest
