"""The Hugging Face Hub: a fast reachability probe and dataset loading for users who have the Hub.

Without network the Hub clients retry for tens of seconds before failing; the probe answers in about a second,
so a visitor who types a Hub id on an offline machine gets the one-sentence answer at once.
"""
from __future__ import annotations

import functools
import os
import re
import socket
import time
from urllib.parse import urlparse

from studio.data.loaders import quote
from studio.errors import DataError, HubUnavailableError

MAX_HUB_ROWS = 200_000
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")
_SPLIT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# httpx/requests transport errors that do not subclass ConnectionError but mean "no network".
_TRANSPORT_ERRORS = {"ConnectError", "ConnectTimeout", "TimeoutException", "NetworkError", "OfflineModeIsEnabled"}
_PROBE_TTL = 60.0


def hub_offline_flag() -> bool:
    """True when the user asked the Hugging Face libraries to stay offline (HF_HUB_OFFLINE)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


@functools.lru_cache(maxsize=4)
def _probe(endpoint: str, _bucket: int) -> bool:
    host = urlparse(endpoint).hostname or ""
    port = urlparse(endpoint).port or 443
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


def hub_reachable() -> bool:
    """Whether the Hub endpoint accepts a TCP connection (cached for a minute; False when HF_HUB_OFFLINE is set)."""
    if hub_offline_flag():
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    return _probe(endpoint, int(time.monotonic() // _PROBE_TTL))


def load_hub_rows(dataset_id: str, split: str = "train", token: str | None = None) -> list[dict]:
    """Load up to MAX_HUB_ROWS rows of one split of a Hugging Face Hub dataset with `datasets.load_dataset`."""
    dataset_id, split = dataset_id.strip(), split.strip()
    shown = quote(dataset_id)
    if not _HUB_ID.fullmatch(dataset_id) or ".." in dataset_id or "--" in dataset_id:
        raise DataError(f"{shown} is not a valid Hugging Face dataset id; use the form owner/name.")
    if not _SPLIT.fullmatch(split):
        raise DataError(f"{quote(split)} is not a valid split name; use a name such as train or test.")
    if not hub_offline_flag() and not hub_reachable():
        raise _unreachable(shown)
    import datasets  # Lazy: a second or two to import, and only Hub sources need it.

    # Called even with HF_HUB_OFFLINE=1 (it then fails at once) so that a dataset already cached still loads.
    try:
        data = datasets.load_dataset(dataset_id, split=f"{split}[:{MAX_HUB_ROWS}]", token=token or None)
        rows = data.to_list()
    except Exception as exc:  # noqa: BLE001 - every failure becomes one typed sentence, never a traceback.
        raise _hub_error(exc, shown, split) from None
    if not rows:
        raise DataError(f"Split {quote(split)} of dataset {shown} has no rows.")
    return rows


def _unreachable(shown: str) -> HubUnavailableError:
    """The one sentence for a Hub that cannot be reached."""
    return HubUnavailableError(f"The Hugging Face Hub cannot be reached from this machine, so dataset {shown} "
                               "cannot be downloaded; upload it as a file or pick a built-in sample.")


def _hub_error(exc: Exception, shown: str, split: str) -> Exception:
    """Translate a datasets/huggingface_hub failure into a typed one-sentence error (never echoing the token)."""
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    text = str(exc)
    if isinstance(exc, GatedRepoError) or "gated" in text.lower():
        return DataError(f"Dataset {shown} is gated; accept its terms on the Hub and provide a token with access.")
    if isinstance(exc, (DatasetNotFoundError, RepositoryNotFoundError)):
        return DataError(f"Dataset {shown} was not found on the Hugging Face Hub (a private one needs a token).")
    transport = {cls.__name__ for cls in type(exc).__mro__} & _TRANSPORT_ERRORS
    if isinstance(exc, (ConnectionError, TimeoutError, LocalEntryNotFoundError)) or transport:
        return _unreachable(shown)
    if isinstance(exc, ValueError) and "split" in text.lower():
        found = re.search(r"\[([^\]]*)\]", text)
        names = f" (it has {found.group(1)[:120]})" if found else ""
        return DataError(f"Dataset {shown} has no split {quote(split)}{names}.")
    return DataError(f"Dataset {shown} could not be loaded from the Hub ({type(exc).__name__}).")
