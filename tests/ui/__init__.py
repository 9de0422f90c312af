"""Tests of the Gradio layer (ui/ and app.py)."""
