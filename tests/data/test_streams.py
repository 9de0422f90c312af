"""Compressed data files (.gz, .bz2, .xz, .zst, a one-file .zip) for every format, read as streams."""
from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from studio.data.dataset import dataset_label, load_source
from studio.data.loaders import has_data_suffix, read_rows
from studio.data.streams import Replay, split_name
from studio.errors import DataError

ROWS = [{"instruction": f"Say {w}", "output": w.upper()} for w in ("hi", "yes", "no")]


def encoded(fmt: str) -> bytes:
    """ROWS written in a format."""
    if fmt == ".json":
        return json.dumps(ROWS).encode()
    if fmt == ".jsonl":
        return "\n".join(json.dumps(r) for r in ROWS).encode()
    if fmt == ".parquet":
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(ROWS), sink)
        return sink.getvalue()
    sep = "\t" if fmt == ".tsv" else ","
    lines = [f"instruction{sep}output"] + [f"{r['instruction']}{sep}{r['output']}" for r in ROWS]
    return ("\n".join(lines) + "\n").encode()


def packed(data: bytes, compression: str, member: str) -> bytes:
    """Data compressed as a file of that suffix would hold it."""
    if compression == ".zip":
        sink = io.BytesIO()
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(member, data)
        return sink.getvalue()
    return {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[compression](data)


@pytest.mark.parametrize("compression", [".gz", ".bz2", ".xz", ".zip"])
@pytest.mark.parametrize("fmt", [".json", ".jsonl", ".csv", ".tsv", ".parquet"])
def test_every_format_loads_compressed(tmp_path, fmt, compression):
    path = tmp_path / f"rows{fmt}{compression}"
    path.write_bytes(packed(encoded(fmt), compression, f"rows{fmt}"))
    assert read_rows(path) == ROWS
    loaded = load_source(str(path))
    assert [e.output for e in loaded.examples] == ["HI", "YES", "NO"] and loaded.summary.clean


def test_a_zip_is_read_by_its_member_name_and_ignores_zip_litter(tmp_path):
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data/rows.jsonl", encoded(".jsonl"))
        archive.writestr("__MACOSX/data/._rows.jsonl", b"\x00\x05")
    assert read_rows(path) == ROWS


@pytest.mark.parametrize("members, fragment", [
    ({"a.csv": b"x", "b.csv": b"y"}, "holds 2 files ('a.csv', 'b.csv'); a zip must hold exactly one data file"),
    ({}, "holds no file"),
    ({"notes.txt": b"x"}, "holds 'notes.txt', which is not a supported format"),
    ({"rows.jsonl.gz": b"x"}, "holds the compressed file 'rows.jsonl.gz'"),
])
def test_zips_that_are_not_one_data_file_are_refused(tmp_path, members, fragment):
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(DataError, match=r"^File 'bundle.zip' ") as info:
        read_rows(path)
    assert fragment in str(info.value)


@pytest.mark.parametrize("name, content, fragment", [
    ("cut.jsonl.gz", gzip.compress(encoded(".jsonl"), mtime=0)[:-12], "is cut off: its gzip data ends early"),
    ("fake.jsonl.gz", b"this is not gzip at all", "is not valid gzip data"),
    ("fake.csv.xz", b"not xz data here", "is not valid xz data"),
    ("fake.json.bz2", b"not bz2 data here", "cannot be read (Invalid data stream)"),
    ("fake.zip", b"PK\x03\x04 broken", "is not a valid zip file"),
    ("data.gz", gzip.compress(b"x", mtime=0), "is gzip-compressed but its name does not say what it holds"),
    ("data.tar.gz", gzip.compress(b"x", mtime=0), "has the extension '.tar.gz', which is not a supported format"),
    ("packed.jsonl", gzip.compress(encoded(".jsonl"), mtime=0),
     "looks like a binary file, not UTF-8 or Latin-1 text: it is gzip-compressed, so give it the .gz extension "
     "(such as 'packed.jsonl.gz')"),
])
def test_damaged_or_misnamed_compressed_files_are_one_sentence(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_source(str(path))
    message = str(info.value)
    assert fragment in message and message.endswith(".") and "\n" not in message


def test_zstandard_needs_its_package_or_loads(tmp_path):
    try:
        import zstandard
    except ImportError:
        path = tmp_path / "rows.jsonl.zst"
        path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
        with pytest.raises(DataError, match=r"is zstandard-compressed, which needs the zstandard package"):
            read_rows(path)
        return
    path = tmp_path / "rows.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(encoded(".jsonl")))
    assert read_rows(path) == ROWS


def test_the_unpacked_size_is_capped_like_a_plain_file(tmp_path):
    path = tmp_path / "bomb.jsonl.gz"
    path.write_bytes(gzip.compress(encoded(".jsonl") * 2000))
    assert path.stat().st_size < 10_000
    with pytest.raises(DataError, match=r"^File 'bomb.jsonl.gz' unpacks to more than the 0\.010 MB limit; "):
        load_source(str(path), max_bytes=10_000)


def test_progress_follows_the_compressed_file(tmp_path):
    path = tmp_path / "many.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(json.dumps(ROWS[i % 3]) for i in range(20_000)).encode()))
    seen: list[float] = []
    load_source(str(path), progress=seen.append)
    assert seen and all(0 <= f <= 1 for f in seen) and seen == sorted(seen)


@pytest.mark.parametrize("name, expected", [("a.jsonl.gz", (".jsonl", ".gz")), ("A.CSV.BZ2", (".csv", ".bz2")),
                                            ("a.csv", (".csv", "")), ("a.zip", ("", ".zip")), ("a.gz", ("", ".gz"))])
def test_split_name(name, expected):
    assert split_name(name) == expected


def test_compressed_names_are_files_and_labels():
    assert has_data_suffix("HumanEval.jsonl.gz") and has_data_suffix("x.zip") and not has_data_suffix("x.tar.gz")
    assert dataset_label("/data/HumanEval.jsonl.gz") == "HumanEval.jsonl.gz"


def test_replay_serves_the_head_again():
    rest = io.StringIO("c\nd\n")
    assert list(Replay("a\nb", rest)) == ["a\n", "bc\n", "d\n"]
    replay = Replay("abc", io.StringIO("def"))
    assert replay.read(2) + replay.read(3) + replay.read() == "abcdef"


def test_a_relative_path_is_echoed_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"^File 'files/x\.csv' does not exist\.$"):
        load_source("files/x.csv")
    (tmp_path / "files").mkdir()
    Path("files/empty.jsonl.gz").write_bytes(gzip.compress(b"  \n"))
    with pytest.raises(DataError, match=r"^File 'files/empty\.jsonl\.gz' is empty\.$"):
        load_source("files/empty.jsonl.gz")
