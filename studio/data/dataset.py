"""Dataset sources (built-in samples, files, Hub ids), filters, and train/test/validation splits."""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from pathlib import Path

from studio.data.convert import DETECT_ROWS, Converted, convert_records, records_of, to_examples
from studio.data.hub import load_hub_rows
from studio.data.loaders import check_file, has_data_suffix, iter_file_rows, local_path, quote
from studio.data.overlap import Overlap, find_overlaps
from studio.data.words import path_label
from studio.data.shapes import CHAT_SHAPES, Shape, column_names, detect_shape
from studio.data.summary import LoadSummary, RowLog
from studio.errors import DataError
from studio.examples import Example
from studio.settings import DataSettings

SAMPLE_PREFIX = "sample:"
PREVIEW_CHARS = 200
# What each filter did, as words for the "too few rows" sentence.
FILTER_LABELS = {
    "dropped_with_input": "dropping rows that have an input",
    "dropped_empty": "dropping rows with an empty instruction or output",
    "dropped_duplicates": "dropping duplicate rows",
}


@dataclass
class LoadedDataset:
    """Examples read from one source, with the detected shape and what the UI shows about it."""

    examples: list[Example]
    shape: Shape
    source: str
    columns: list[str]
    n_rows: int
    title: str = ""
    description: str = ""
    recommended_template: str = ""
    # A held-out split that comes with the source (built-in samples); used instead of a random test split.
    fixed_test: list[Example] | None = None
    # What loading did to the rows: counts per repair/skip reason and a few rows of each.
    summary: LoadSummary | None = None
    # Examples with earlier turns (multi-turn chats): a chat template trains each of their assistant turns.
    n_multi_turn: int = 0


@dataclass
class Splits:
    """The examples to train on, to compare before/after on, and to compute eval loss on."""

    train: list[Example]
    test: list[Example]
    validation: list[Example]
    counts: dict[str, int] = field(default_factory=dict)

    @cached_property
    def near_duplicates(self) -> list[Overlap]:
        """Held-out rows whose prompt repeats or nearly repeats a training prompt (`data.overlap`; found once, on
        first use, and never moved: the splits stay as they are and the headline leaves these rows out)."""
        return find_overlaps(self.train, self.test)


def load_source(
    spec: str,
    column_map: dict | None = None,
    hub_split: str = "train",
    token: str | None = None,
    max_bytes: int | None = None,
    strict: bool = False,
    keep_truncated: bool = False,
    progress: Callable[[float], None] | None = None,
) -> LoadedDataset:
    """Load "sample:NAME", a file path, or a Hub dataset id into normalised examples.

    Row-level problems are repaired or skipped and counted in `summary` (`strict` refuses instead); a JSON array
    cut off mid-record raises TruncatedFileError unless `keep_truncated`; `progress(fraction)` follows a file read.
    """
    spec = (spec or "").strip()
    if not spec:
        raise DataError("No dataset was chosen; pick a built-in sample, upload a file or give a Hub dataset id.")
    if spec.startswith(SAMPLE_PREFIX):
        return _load_sample(spec[len(SAMPLE_PREFIX):].strip())
    log = RowLog(strict=strict)
    if _is_file_spec(spec):
        path, label = local_path(spec), path_label(spec)  # messages name the file as it was given
        check_file(path, max_bytes, label)
        records = iter_file_rows(path, log, keep_truncated=keep_truncated, progress=progress, max_bytes=max_bytes,
                                 label=label)
        title = label[1:-1]
        return _loaded(convert_records(records, title, column_map, log), source=str(path), title=title)
    rows = load_hub_rows(spec, hub_split, token)
    return _loaded(convert_records(records_of(rows), spec, column_map, log), source=spec, title=spec)


def load_settings_source(data: DataSettings, token: str | None = None) -> LoadedDataset:
    """`load_source` for a run's data settings (source, mapping, split, strictness, truncated files)."""
    return load_source(data.dataset, column_map=data.column_map or None, hub_split=data.hub_split, token=token,
                       strict=data.strict, keep_truncated=data.keep_truncated)


def recommended_template(spec: str) -> str:
    """The template a source suits, from its first rows only: a sample's own, "chat" for chat-shaped files, else ""."""
    from studio.data.samples import SAMPLES  # Lazy, as in _load_sample.

    spec = (spec or "").strip()
    if spec.startswith(SAMPLE_PREFIX):
        sample = SAMPLES.get(spec[len(SAMPLE_PREFIX):].strip())
        return sample.recommended_template if sample else ""
    if not _is_file_spec(spec):
        return ""  # a Hub dataset is not downloaded twice; its load says what it is
    try:
        head = [row for _, row, _ in islice(iter_file_rows(local_path(spec), RowLog(), keep_truncated=True),
                                             DETECT_ROWS)]
        return "chat" if head and detect_shape(head).name in CHAT_SHAPES else ""
    except DataError:
        return ""  # the real load refuses the file with its sentence


def _is_file_spec(spec: str) -> bool:
    """True when the spec names a local file (existing, or clearly a path), not a Hub id."""
    path = local_path(spec)
    try:
        if path.exists():
            return True
    except (OSError, ValueError):
        return True  # Not even a valid path: let the reader say so as a file problem.
    return has_data_suffix(path.name) or spec.startswith(("/", ".", "~")) or "\\" in spec


def _loaded(converted: Converted, source: str, title: str) -> LoadedDataset:
    """A LoadedDataset from converted rows; chat-shaped data recommends a chat template."""
    examples = converted.examples
    return LoadedDataset(examples, converted.shape, source, converted.columns, converted.summary.n_rows, title=title,
                         recommended_template="chat" if converted.chat else "", summary=converted.summary,
                         n_multi_turn=sum(1 for e in examples if e.history))


def _load_sample(name: str) -> LoadedDataset:
    """A built-in sample with its own fixed test split; its shape is the sample's own, so no mapping applies."""
    from studio.data.samples import SAMPLES  # Lazy: samples build their rows in code and are not always needed.

    sample = SAMPLES.get(name)
    if sample is None:
        raise DataError(f"Unknown sample {quote(name)}; the built-in samples are {', '.join(sorted(SAMPLES))}.")
    train_rows, test_rows = sample.build()
    shape = detect_shape(train_rows)
    fixed_test = to_examples(test_rows, detect_shape(test_rows)) if test_rows else None
    log = RowLog()
    examples = to_examples(train_rows, shape, log)
    return LoadedDataset(
        examples=examples,
        shape=shape,
        source=f"{SAMPLE_PREFIX}{name}",
        columns=column_names(train_rows),
        n_rows=len(train_rows) + len(test_rows or []),
        title=sample.title,
        description=sample.description,
        recommended_template=getattr(sample, "recommended_template", ""),
        fixed_test=fixed_test,
        summary=log.summary(len(train_rows), len(examples)),
    )


def prepare_splits(loaded: LoadedDataset, data: DataSettings) -> Splits:
    """Filter, dedupe, shuffle and cap the examples, then split them into train/test/validation."""
    rng = random.Random(data.seed)
    counts = {"rows": loaded.n_rows, **dict.fromkeys(FILTER_LABELS, 0), "dropped_overlap": 0}
    pool, stages = _filter(loaded.examples, data, counts)
    if loaded.fixed_test is not None:
        return _split_with_fixed_test(pool, stages, loaded.fixed_test, data, counts, rng)
    pool = _shuffle_and_cap(pool, data, rng, stages)
    has_validation = data.validation_fraction > 0
    purpose = ("at least 3 are needed, one each to train on, validate and test" if has_validation
               else "at least 2 are needed, one to train on and one to test")
    _require(len(pool), 2 + int(has_validation), stages, purpose)
    n = len(pool)
    n_test = max(1, round(n * data.test_fraction))  # Compare needs one held-out row even at fraction 0.
    if data.max_test_examples:
        n_test = min(n_test, data.max_test_examples)  # Rows over the cap go to training rather than waste.
    n_test = min(n_test, n - 1 - int(has_validation))
    n_val = min(max(1, round(n * data.validation_fraction)), n - 1 - n_test) if has_validation else 0
    n_train = n - n_test - n_val
    # The test rows are the tail: random after shuffling, the file's last rows when shuffling is off.
    return _splits(pool[:n_train], pool[n_train + n_val:], pool[n_train:n_train + n_val], counts)


def _split_with_fixed_test(
    pool: list[Example], stages: list[tuple[str, int]], fixed: list[Example],
    data: DataSettings, counts: dict[str, int], rng: random.Random,
) -> Splits:
    """Use the source's own test split; training rows whose prompt is in it are dropped (no leakage)."""
    test, test_stages = _filter(fixed, data, counts)
    # A fixed split keeps its published order (the samples interleave tasks so any prefix covers all of them).
    if data.max_test_examples:
        test = test[:data.max_test_examples]
    if not test:
        raise DataError(f"No rows of the test split remain {_after(test_stages)}, so there is nothing to compare on.")
    held_out = {_prompt_key(e) for e in test}
    kept = [e for e in pool if _prompt_key(e) not in held_out]
    counts["dropped_overlap"] = len(pool) - len(kept)
    stages.append(("dropping training rows that also appear in the test split", len(kept)))
    pool = _shuffle_and_cap(kept, data, rng, stages)
    has_validation = data.validation_fraction > 0
    purpose = ("at least 2 are needed, one to train on and one to validate" if has_validation
               else "at least 1 is needed to train on")
    _require(len(pool), 1 + int(has_validation), stages, purpose)
    n_val = min(max(1, round(len(pool) * data.validation_fraction)), len(pool) - 1) if has_validation else 0
    n_train = len(pool) - n_val
    return _splits(pool[:n_train], test, pool[n_train:], counts)


def _splits(train: list[Example], test: list[Example], validation: list[Example], counts: dict[str, int]) -> Splits:
    """Package the three splits and record their sizes."""
    counts.update(train=len(train), test=len(test), validation=len(validation))
    return Splits(train=train, test=test, validation=validation, counts=counts)


def _filter(
    examples: list[Example], data: DataSettings, counts: dict[str, int]
) -> tuple[list[Example], list[tuple[str, int]]]:
    """Apply drop_with_input, drop_empty and dedupe; add the drops to counts and return (kept, stages)."""
    kept = list(examples)
    stages = [("loaded", len(kept))]
    steps = (
        ("dropped_with_input", data.drop_with_input, lambda rows: [e for e in rows if not e.input.strip()]),
        ("dropped_empty", data.drop_empty,
         lambda rows: [e for e in rows if e.instruction.strip() and e.output.strip()]),
        ("dropped_duplicates", data.dedupe, lambda rows: list(dict.fromkeys(rows))),
    )
    for key, enabled, step in steps:
        if enabled:
            before, kept = len(kept), step(kept)
            counts[key] += before - len(kept)
            stages.append((FILTER_LABELS[key], len(kept)))
    return kept, stages


def _shuffle_and_cap(
    pool: list[Example], data: DataSettings, rng: random.Random, stages: list[tuple[str, int]]
) -> list[Example]:
    """Shuffle with the seed (when asked); max_examples keeps a seeded random subset (in file order unshuffled)."""
    pool = list(pool)
    if data.shuffle:
        rng.shuffle(pool)  # any prefix of a shuffled pool is a seeded random subset
    if data.max_examples and data.max_examples < len(pool):
        if not data.shuffle:  # the first N of a file are often one topic: pick N at random, keep their order
            keep = sorted(rng.sample(range(len(pool)), data.max_examples))
            pool = [pool[i] for i in keep]
        pool = pool[:data.max_examples]
        stages.append((f"keeping a seeded random {data.max_examples} (max_examples)", len(pool)))
    return pool


def _prompt_key(example: Example) -> tuple:
    """What the model sees before answering; equal keys in train and test would leak the answer."""
    return example.system, example.history, example.instruction, example.input


def _after(stages: list[tuple[str, int]]) -> str:
    """'after <the last filter that removed rows>' or 'in the data' when none did."""
    shrinking = [label for (label, n), (_, prev) in zip(stages[1:], stages) if n < prev]
    return f"after {shrinking[-1]}" if shrinking else "in the data"


def _require(remaining: int, needed: int, stages: list[tuple[str, int]], purpose: str) -> None:
    """Raise one clear sentence when fewer rows remain than the splits need."""
    if remaining >= needed:
        return
    have = {0: "No rows remain", 1: "Only 1 row remains"}.get(remaining, f"Only {remaining} rows remain")
    after = _after(stages)
    hint = "; check which column holds the output" if after.endswith(FILTER_LABELS["dropped_empty"]) else ""
    raise DataError(f"{have} {after} (of {stages[0][1]} loaded), but {purpose}{hint}.")


def dataset_label(spec: str) -> str:
    """A short name for a dataset spec: a file's name, else the spec itself (sample:NAME or a Hub id)."""
    return Path(spec).name if has_data_suffix(Path(spec).name) else spec


def example_table(examples: list[Example], n: int = 20) -> list[dict]:
    """The first n examples as preview rows with instruction/input/output clipped to ~200 characters."""
    return [{"instruction": _clip(e.instruction), "input": _clip(e.input), "output": _clip(e.output)}
            for e in examples[:n]]


def _clip(text: str, limit: int = PREVIEW_CHARS) -> str:
    """Text shortened to `limit` characters with an ellipsis when cut."""
    return text if len(text) <= limit else text[:limit - 1] + "…"
