"""The export check record: scores and counts (pure), its file in the run folder, and a broken GGUF in one sentence."""
from __future__ import annotations

import pytest

from studio.errors import ExportError, RunError
from studio.examples import Example
from studio.publish.verify import build_check, load_checks, load_gguf, save_check
from studio.runs import RunFolder
from tests.builders import make_finished_run

EXAMPLES = [Example(instruction="Sort the words.", input="dog cat bee ant emu", output="ant bee cat dog emu"),
            Example(instruction="Reverse the words.", input="one two three four five", output="five four three two one")]
RIGHT = [e.output for e in EXAMPLES]


def test_a_check_counts_equal_answers_and_scores_both():
    check = build_check("q8_0", "run-q8_0.gguf", EXAMPLES, RIGHT, [RIGHT[0], "five four"], "comparison", 1.234)
    assert (check.n, check.n_equal, check.share_equal, check.seconds) == (2, 1, 0.5, 1.2)
    assert check.bleu_studio == pytest.approx(100.0) and check.bleu_gguf < 90
    assert [row["equal"] for row in check.rows] == [True, False] and check.rows[1]["gguf"] == "five four"
    assert check.summary() == ("q8_0 GGUF: 1/2 answers equal the studio's tuned answers; "
                               f"BLEU {check.bleu_gguf:.1f} from the GGUF vs 100.0 in the studio.")


def test_checks_are_kept_per_quantisation(runs_dir, tiny_tokenizer):
    run, _ = make_finished_run(runs_dir, tiny_tokenizer, adapter=False)
    assert load_checks(run) == {}
    f16 = build_check("f16", "a.gguf", EXAMPLES, RIGHT, RIGHT, "generated", 1.0)
    q8 = build_check("q8_0", "b.gguf", EXAMPLES, RIGHT, [RIGHT[0], "x"], "generated", 1.0)
    save_check(run, f16)
    save_check(run, q8)
    assert load_checks(run) == {"f16": f16, "q8_0": q8}
    RunFolder(run).gguf_check_file.write_text("{not json")
    assert load_checks(run) == {}  # an unreadable file is no check, not a crash


def test_a_deleted_run_keeps_no_check(runs_dir, tiny_tokenizer):
    run, _ = make_finished_run(runs_dir, tiny_tokenizer, adapter=False)
    RunFolder(run).run_file.unlink()
    with pytest.raises(RunError, match="no longer exists"):
        save_check(run, build_check("f16", "a.gguf", EXAMPLES[:1], RIGHT[:1], RIGHT[:1], "generated", 1.0))


def test_a_broken_gguf_is_one_sentence(tmp_path):
    path = tmp_path / "run-f16.gguf"
    path.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ExportError, match=r"^transformers could not read run-f16.gguf back \(.*\), so the export is "
                                          r"broken; export it again\.$"):
        load_gguf(path)
