"""Train more's amount: N more epochs (the parent's max_steps cleared) or N more steps."""
from __future__ import annotations

import pytest

from studio.errors import RunError
from ui.runs_actions import more_overrides


def test_more_epochs_or_steps():
    assert more_overrides(2, "epochs") == {"train": {"epochs": 2.0, "max_steps": 0}}
    assert more_overrides(30, "steps") == {"train": {"max_steps": 30}}
    for bad in (0, None):
        with pytest.raises(RunError, match="at least 1 epoch or step"):
            more_overrides(bad, "steps")
