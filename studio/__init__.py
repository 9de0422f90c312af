"""Instruction-Tuning Studio: a library to instruction-tune a causal LM with LoRA and compare before/after.

Importing `studio` never imports gradio; the UI lives in `ui/` and `app.py`.
"""
__version__ = "0.1.0"
