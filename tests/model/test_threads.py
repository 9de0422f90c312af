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
