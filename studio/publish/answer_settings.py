"""The generation settings a run's answers use outside the studio (GGUF checks, the Modelfile, the card's commands).

Compare sizes the answers to the data and guards long ones against loops (`lengths.sized`); an export must answer
with those settings, not the run's raw ones (a 12-token limit made for word tasks would cut an own-data model's
answers after a few words in Ollama). When the run was compared, its saved settings are the truth; otherwise the
run's own are sized to its held-out references the way the Chat sizes its answers (no time budget).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from studio.evaluate.comparison import load_comparison
from studio.evaluate.lengths import reference_lengths, sized_to_references
from studio.runs import RunFolder
from studio.settings import GenerationSettings


def greedy(gen: GenerationSettings) -> GenerationSettings:
    """The settings decoded greedily, as Compare answers and exports are checked."""
    return dataclasses.replace(gen, do_sample=False, num_beams=1)


def answer_settings(run_dir: Path, tokenizer: Any) -> GenerationSettings:
    """Greedy settings as Compare answers: the saved comparison's when the run was compared, else the run's own sized
    to its held-out references."""
    from studio.data.templates import template_for

    comparison = load_comparison(run_dir)
    if comparison is not None:
        return greedy(comparison.generation_settings())
    folder = RunFolder(run_dir)
    settings = folder.read_settings()
    held_out = folder.read_split("test", required=False)
    if settings.data.max_test_examples > 0:
        held_out = held_out[:settings.data.max_test_examples]
    lengths = reference_lengths(tokenizer, template_for(settings.data, tokenizer), held_out)
    return greedy(sized_to_references(settings.generation, lengths)[0])
