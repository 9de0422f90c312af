"""Before/after: base = adapter disabled, tuned = adapter on, both scored (studio.evaluate.before_after)."""
from __future__ import annotations

import pytest

from studio.data.templates import get_template
from studio.errors import DataError
from studio.evaluate.before_after import answer_both, compare
from studio.examples import Example
from studio.settings import GenerationSettings
from tests.builders import one_at_a_time, tuned_model
from tests.tiny import make_tiny_model


def test_compare_base_is_the_unadapted_model(tiny_tokenizer):
    template = get_template("alpaca")
    examples = [Example("Uppercase the word.", "APPLE", "apple"), Example("Count the words.", "2", "kite lemon"),
                Example("Reverse the letters.", "god", "dog")]
    prompts = [template.prompt(ex) for ex in examples]
    gen = GenerationSettings(max_new_tokens=8, batch_size=2)
    plain = one_at_a_time(make_tiny_model(tiny_tokenizer), tiny_tokenizer, prompts, gen.max_new_tokens)
    model = tuned_model(tiny_tokenizer)
    stages: list[str] = []
    result = compare(model, tiny_tokenizer, template, examples, gen, progress=lambda stage, d, t: stages.append(stage))
    assert [row.base for row in result.rows] == plain
    assert [row.tuned for row in result.rows] != plain
    assert stages == ["base", "base", "tuned", "tuned"]
    assert result.template == "alpaca" and result.generation["max_new_tokens"] == 8
    assert result.base.n == 3 and result.base_seconds > 0 and result.tuned_seconds > 0
    assert result.rows[0].reference == "APPLE" and result.rows[0].input == "apple"
    base, tuned = answer_both(model, tiny_tokenizer, template, "Reverse the letters.", "dog", gen)
    assert (base, tuned) == (result.rows[2].base, result.rows[2].tuned)
    with pytest.raises(DataError):
        answer_both(model, tiny_tokenizer, template, "  ", "", gen)
