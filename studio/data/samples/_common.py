"""Helpers shared by the sample builders: de-duplication and a stratified, interleaved held-out split."""
from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

T = TypeVar("T")


def unique_by(items: Iterable[T], key: Callable[[T], Hashable]) -> list[T]:
    """The items in order, keeping only the first one for each key."""
    seen: set[Hashable] = set()
    kept = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            kept.append(item)
    return kept


def round_robin(groups: list[list[T]]) -> list[T]:
    """One item from each group in turn until all groups are empty."""
    out: list[T] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


def stratified_split(
    items: list[T], group: Callable[[T], str], n_test: int, rng: random.Random
) -> tuple[list[T], list[T]]:
    """Hold out `n_test` items spread evenly over the groups; returns (train, test).

    The test list is interleaved across groups so that any prefix of it (the studio compares only the first
    `max_test_examples` rows) still covers every group. The train list is shuffled so a one-epoch run sees the
    groups mixed rather than in blocks. Items must already be unique by the key the caller cares about.
    """
    by_group: dict[str, list[T]] = {}
    for item in items:
        by_group.setdefault(group(item), []).append(item)
    for members in by_group.values():
        rng.shuffle(members)
    picked_ids = {id(item) for item in round_robin(list(by_group.values()))[:n_test]}
    test = round_robin([[m for m in members if id(m) in picked_ids] for members in by_group.values()])
    train = [item for item in items if id(item) not in picked_ids]
    rng.shuffle(train)
    return train, test
