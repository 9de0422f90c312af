"""Property tests: random rows and random bytes may only ever fail with a StudioError (never a raw exception)."""
from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.data.convert import to_examples
from studio.data.dataset import load_source, prepare_splits
from studio.data.loaders import read_rows
from studio.data.shapes import detect_shape
from studio.errors import StudioError
from studio.settings import DataSettings

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KNOWN = ["instruction", "input", "output", "response", "question", "answer", "context", "prompt", "completion",
         "act", "system", "messages", "conversations", " Output ", "INSTRUCTION"]
ROLES = ["user", "assistant", "system", "human", "gpt", "tool", "", "USER"]

keys = st.one_of(st.sampled_from(KNOWN), st.text(max_size=8))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
turn = st.builds(lambda role_key, role, content_key, content: {role_key: role, content_key: content},
                 st.sampled_from(["role", "from"]), st.sampled_from(ROLES), st.sampled_from(["content", "value"]),
                 st.one_of(scalars, st.lists(scalars, max_size=2)))
turns = st.lists(turn, max_size=5)
nested = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=5)
values = st.one_of(scalars, turns, nested)
rows_strategy = st.lists(st.dictionaries(keys, values, max_size=5), max_size=6)
column_maps = st.one_of(st.none(), st.dictionaries(st.sampled_from(["instruction", "input", "output", "system", "x"]),
                                                   st.one_of(st.none(), st.sampled_from(KNOWN), st.text(max_size=5)),
                                                   max_size=4))


def only_studio_errors(call, *args, **kwargs):
    """Run call; a StudioError is an allowed outcome, anything else fails the property."""
    try:
        return call(*args, **kwargs)
    except StudioError as exc:
        message = str(exc)
        assert message.endswith(".") and "\n" not in message, message
        return None


def full_pipeline(rows, column_map):
    """detect_shape -> to_examples -> prepare_splits, as the UI runs them."""
    shape = detect_shape(rows, column_map)
    examples = to_examples(rows, shape)
    return examples


def rows_to_csv(rows: list[dict], delimiter: str) -> str:
    """Random rows written as delimited text (nested values as their JSON)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(columns)
    for row in rows:
        cells = [row.get(c, "") for c in columns]
        writer.writerow([json.dumps(v) if isinstance(v, (list, dict)) else v for v in cells])
    return out.getvalue()


@FAST
@given(rows=rows_strategy, column_map=column_maps)
def test_random_rows_through_shapes(rows, column_map):
    examples = only_studio_errors(full_pipeline, rows, column_map)
    if examples is not None:
        assert len(examples) <= len(rows)
        assert all(isinstance(e.instruction, str) and isinstance(e.output, str) for e in examples)


@FAST
@given(rows=rows_strategy, suffix=st.sampled_from([".json", ".jsonl", ".csv", ".tsv"]),
       delimiter=st.sampled_from([",", ";", "\t", "|"]), column_map=column_maps, seed=st.integers(0, 100))
def test_random_rows_as_files_through_load_source(rows, suffix, delimiter, column_map, seed):
    if suffix == ".json":
        text = json.dumps(rows)
    elif suffix == ".jsonl":
        text = "\n".join(json.dumps(r) for r in rows)
    else:
        text = rows_to_csv(rows, delimiter)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"random{suffix}"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        loaded = only_studio_errors(load_source, str(path), column_map=column_map)
        if loaded is not None:
            only_studio_errors(prepare_splits, loaded, DataSettings(seed=seed, validation_fraction=0.1))


@FAST
@given(content=st.one_of(
           st.binary(max_size=300),
           st.builds(lambda head, tail: head + tail,
                     st.sampled_from([b"[{\"", b"{\"data\": [", b"instruction,output\n", b"\xef\xbb\xbf", b"\xff\xfe",
                                      b"PAR1", b"{\"messages\": [{\"role\": \"user\"", b"a;b\n1;2\n"]),
                     st.binary(max_size=200))),
       suffix=st.sampled_from([".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet"]))
def test_random_bytes_through_read_rows_and_load_source(content, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"random{suffix}"
        path.write_bytes(content)
        rows = only_studio_errors(read_rows, path)
        if rows is not None:
            assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
        only_studio_errors(load_source, str(path), max_bytes=10_000)


@FAST
@given(text=st.text(max_size=200), suffix=st.sampled_from([".json", ".jsonl", ".csv", ".tsv"]))
def test_random_text_through_load_source(text, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"random{suffix}"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        only_studio_errors(load_source, str(path))


@FAST
@given(spec=st.text(max_size=40))
def test_random_specs_through_load_source(spec):
    # No network here (HF_HUB_OFFLINE=1): a Hub-looking spec must fail fast as a StudioError too.
    if not spec.startswith("sample:"):
        only_studio_errors(load_source, spec)
