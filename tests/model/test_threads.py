"""How many torch threads a shared CPU leaves us (studio.model.threads)."""
from __future__ import annotations

import pytest
import torch

from studio.model.threads import ThreadBalancer


@pytest.mark.parametrize(("machine", "own", "threads"), [(50, 100, 2), (100, 100, 1), (60, 100, 2), (100, 0, 1)])
def test_thread_balancer_leaves_cores_busy_elsewhere_alone(machine, own, threads):
    balancer = ThreadBalancer(cores=2)
    balancer._set(machine_percent=machine, own_percent=own)
    assert torch.get_num_threads() == threads


def test_the_policy_resolves_the_thread_count_once():
    from studio.model.threads import available_cores, thread_policy
    from studio.settings import TrainSettings

    assert thread_policy(TrainSettings()).threads == available_cores() >= 1
    assert thread_policy(TrainSettings(threads=3)).threads == 3
    # A resumed or compared run keeps the count it trained with, whatever the setting says now.
    assert thread_policy(TrainSettings(threads=3), recorded=1).threads == 1
    pinned, balanced = thread_policy(TrainSettings(threads=2)), thread_policy(TrainSettings(balance_threads=True))
    assert (pinned.name, balanced.name) == ("pinned", "balanced")
    assert pinned.describe() == "2 CPU threads, pinned" and "not reproducible" in balanced.describe()


def test_use_threads_pins_this_thread_and_restores_it():
    from studio.model.threads import ThreadPolicy, balancing, use_threads

    before = torch.get_num_threads()
    with use_threads(ThreadPolicy(1)):
        assert torch.get_num_threads() == 1 and not balancing()
        with use_threads(ThreadPolicy(2, balance=True)):
            assert torch.get_num_threads() == 2 and balancing()
        assert torch.get_num_threads() == 1 and not balancing()
    assert torch.get_num_threads() == before
