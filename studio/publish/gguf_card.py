"""The GGUF parts of a model card: how to run the file in llama.cpp, Ollama and transformers, and its check."""
from __future__ import annotations

from studio.publish.markdown import md_table
from studio.publish.verify import ExportCheck
from studio.settings import GenerationSettings

CHECK_INTRO = ("Each GGUF file was loaded back with transformers (`gguf_file=`, its own tokenizer included) and "
               "answered the held-out prompts greedily through the run's template, with the same stop strings as "
               "the studio's comparison.")

# llama.cpp penalises repeats among the last N tokens it has read (prompt included); transformers penalises every
# token of the prompt and the answer. A window past any context the model reads (Gemma 3 270M: 32,768) makes them
# the same rule; llama-cli takes no -1 here.
REPEAT_WINDOW = 32768


def llama_flags(gen: GenerationSettings) -> str:
    """llama.cpp's command-line flags for the studio's greedy answers: length, temperature 0, the loop guard."""
    flags = f"-n {gen.max_new_tokens} --temp 0"
    if gen.repetition_penalty != 1.0:
        flags += f" --repeat-penalty {gen.repetition_penalty:g} --repeat-last-n {REPEAT_WINDOW}"
    return flags


def usage_lines(gguf_name: str, gen: GenerationSettings) -> list[str]:
    """'How to use' for a GGUF folder: llama.cpp, Ollama (the Modelfile next to it) and transformers."""
    return ["## How to use", "",
            "llama.cpp, with `prompt.txt` holding the template above filled in (greedy, as the studio answers):", "",
            "```bash", f"llama-cli -m {gguf_name} -f prompt.txt {llama_flags(gen)} -no-cnv", "```", "",
            "Ollama, with the `Modelfile` next to the file (its TEMPLATE, stop strings and defaults are the run's):",
            "", "```bash", "ollama create my-model -f Modelfile", "ollama run my-model", "```", "",
            "transformers:", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
            f'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder", gguf_file="{gguf_name}")',
            f'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder", gguf_file="{gguf_name}")', "```", ""]


def check_lines(checks: dict[str, ExportCheck]) -> list[str]:
    """'GGUF export check': per quantisation, answers equal to the studio's and BLEU of both ([] when unchecked)."""
    if not checks:
        return []
    rows = [[c.gguf_file, f"{c.n_equal}/{c.n}", f"{c.bleu_gguf:.1f}", f"{c.bleu_studio:.1f}",
             "its comparison" if c.studio_answers == "comparison" else "answered for the check"]
            for c in checks.values()]
    header = ["File", "Answers equal to the studio's", "BLEU (GGUF)", "BLEU (studio)", "Studio answers from"]
    return ["## GGUF export check", "", CHECK_INTRO, "", *md_table(header, rows), ""]
