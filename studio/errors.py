"""Typed errors a user can cause; each message is one sentence meant for the UI."""
from __future__ import annotations


class StudioError(Exception):
    """Base class: the message is a single sentence a user can act on."""


class DataError(StudioError):
    """A dataset file, row or column mapping that cannot be used."""


class ShapeError(DataError):
    """The rows were read, but no usable shape fits them; `columns` lists the columns found, for mapping by hand."""

    def __init__(self, message: str, columns: list[str]) -> None:
        super().__init__(message)
        self.columns = list(columns)


class TruncatedFileError(DataError):
    """A JSON array cut off mid-record (a partial download); `complete` counts the whole records before the cut."""

    def __init__(self, message: str, complete: int) -> None:
        super().__init__(message)
        self.complete = complete


class TemplateError(StudioError):
    """A prompt template that cannot render (unknown field, unbalanced braces, no chat template)."""


class SettingsError(StudioError, ValueError):
    """A hyperparameter or preset value that is out of range or inconsistent."""


class ModelError(StudioError):
    """A base model that cannot be found or loaded."""


class HubUnavailableError(StudioError):
    """The Hugging Face Hub cannot be reached from this machine."""


class RunError(StudioError):
    """A run folder that is missing, busy, or not owned by the caller."""


class TrainingError(StudioError):
    """Training could not start or failed while running."""


class ExportError(StudioError):
    """A run that cannot be exported in the asked format (unsupported architecture or tokenizer, no disk space)."""
