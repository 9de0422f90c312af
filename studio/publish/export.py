"""Shipping a run: the adapter as a zip, the LoRA merged into the base weights, and a push to the Hugging Face Hub.

Pure library functions over a run folder (the UI and the CLI call them). Everything lands in `run_dir/exports/`:
`<run-id>-adapter/` (what the zip and an adapter push hold), `<run-id>-adapter.zip`, `merged/` (a plain Transformers
model) and `<run-id>-merged.zip`; the GGUF exports are `studio.publish.gguf_export`'s. Each export carries a
generated README.md model card (`studio.modelcard`) and the run's `reproduce/` bundle (`studio.publish.reproduce`).
A Hub token is used for the calls it is passed to and never written anywhere.
"""
from __future__ import annotations

import copy
import json
import math
import re
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.data import hub
from studio.data.loaders import quote
from studio.errors import ExportError, HubUnavailableError, RunError, SettingsError, StudioError
from studio.publish.modelcard import write_card
from studio.publish.reproduce import hub_model_id, write_repro_bundle
from studio.runs import RunFolder, replace_folder, replacing
from studio.settings import EMBEDDED_MODEL, StudioSettings

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
OFFLINE_MESSAGE = "The Hugging Face Hub cannot be reached, so nothing was pushed; download the zip instead."
# Hub rules: owner and name of letters, digits, - _ . up to 96 characters, no "--" or "..", not ending in .git.
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_TRANSPORT_ERRORS = {"ConnectError", "ConnectTimeout", "TimeoutException", "NetworkError", "OfflineModeIsEnabled"}
# The training rows stay out of Hub uploads (the zip keeps them); a repository is easier to make public than private.
PUSH_IGNORE = ["*/*.jsonl", ".*"]
# Exports of one run write the same folders; one at a time per process keeps a zip from reading half a folder.
export_lock = threading.Lock()

BaseLoader = Callable[..., Any]  # (ModelSettings, token=None) -> studio.model.loading.LoadedModel


def adapter_folder(run_dir: Path) -> Path:
    """The run's adapter folder, checked to hold a saved PEFT adapter (RunError otherwise)."""
    folder = RunFolder(run_dir).adapter_dir
    if not run_dir.is_dir():
        raise RunError(f"Run folder {run_dir.name} no longer exists; it may have been deleted.")
    if not all((folder / name).is_file() for name in ADAPTER_FILES):
        raise RunError("This run has no saved adapter yet; train it until it saves one before exporting.")
    return folder


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _point_at_hub_base(config_path: Path, settings: StudioSettings) -> None:
    """Name the Hub base model in adapter_config.json (training recorded the local cache folder of the embedded one)."""
    if settings.model.model.strip() != EMBEDDED_MODEL:
        return
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = hub_model_id(settings)
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")


def _copy_reproduce(run_dir: Path, target: Path) -> None:
    """Copy the run's reproduce/ bundle, writing it first for runs that started before bundles existed."""
    bundle = RunFolder(run_dir).reproduce_dir
    if not bundle.is_dir():
        try:
            write_repro_bundle(run_dir)
        except StudioError:
            return  # no saved training split: nothing to reproduce from
    shutil.copytree(bundle, target / bundle.name)


def stage_adapter(run_dir: Path, target: Path, repo_id: str = "") -> Path:
    """Fill `target` with the adapter and tokenizer files, the model card, loss chart and reproduce/ bundle."""
    source, settings = adapter_folder(run_dir), RunFolder(run_dir).read_settings()
    _fresh(target)
    for path in source.iterdir():
        if path.is_file() and path.name != "README.md":  # peft's template card; ours replaces it
            shutil.copy2(path, target / path.name)
    _point_at_hub_base(target / "adapter_config.json", settings)
    _copy_reproduce(run_dir, target)
    write_card(run_dir, target, "adapter", repo_id)
    return target


def zip_adapter(run_dir: Path) -> Path:
    """Write run_dir/exports/<run-id>-adapter.zip (one top folder: adapter, tokenizer, README.md, reproduce/)."""
    top, exports = f"{run_dir.name}-adapter", RunFolder(run_dir).exports_dir
    target = exports / f"{top}.zip"
    with export_lock:
        staged = stage_adapter(run_dir, exports / top)
        with replacing(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in staged.rglob("*") if p.is_file()):
                archive.write(path, f"{top}/{path.relative_to(staged).as_posix()}")
    return target


def default_loader(model_settings: Any, token: str | None = None) -> Any:
    """The real base-model loader (evaluation mode); tests and the UI inject their own."""
    from studio.model.loading import load_base_model

    return load_base_model(model_settings, token=token, for_training=False)


def merged_model(run_dir: Path, model: Any = None, base_loader: BaseLoader | None = None,
                 token: str | None = None) -> Any:
    """The tuned model with its LoRA folded into the weights; a model the caller passes in is left untouched."""
    from peft import PeftModel

    if model is not None and not getattr(model, "is_loaded_in_4bit", False):
        # merge_and_unload rewrites the layers in place: merging a copy keeps the caller's adapter model working.
        return copy.deepcopy(model).merge_and_unload()
    # A 4-bit (QLoRA) model is merged into a freshly loaded full-precision base instead of its quantised weights.
    base = (base_loader or default_loader)(RunFolder(run_dir).read_settings().model, token=token).model
    return PeftModel.from_pretrained(base, str(adapter_folder(run_dir))).merge_and_unload()


def check_disk(need: int, folder: Path, what: str) -> None:
    """ExportError unless `folder`'s disk has room for `need` bytes (5% spare)."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if need * 1.05 > free:
        raise ExportError(f"{what} needs about {need / 1e9:.2f} GB of disk but only {free / 1e9:.2f} GB is free; "
                          "free some space first.")


def model_bytes(model: Any) -> int:
    """Bytes of the model's weights as saved (tied weights counted once)."""
    return sum(p.numel() * p.element_size() for p in {id(p): p for p in model.parameters()}.values())


def _copy_tokenizer(source: Path, target: Path) -> None:
    """The tokenizer files the run saved next to its adapter (exactly the tokenizer it trained with)."""
    for path in source.iterdir():
        if path.is_file() and not path.name.startswith("adapter_") and path.name != "README.md":
            shutil.copy2(path, target / path.name)


def merge_adapter(run_dir: Path, model: Any = None, tokenizer: Any = None, base_loader: BaseLoader | None = None,
                  token: str | None = None) -> Path:
    """Save the LoRA folded into the base weights, with its tokenizer, as safetensors in run_dir/exports/merged/."""
    adapter = adapter_folder(run_dir)
    merged = merged_model(run_dir, model, base_loader, token)

    def write(tmp: Path) -> None:
        check_disk(model_bytes(merged), tmp, "Saving the merged model")
        merged.save_pretrained(str(tmp))  # transformers 5 writes safetensors only
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        else:
            _copy_tokenizer(adapter, tmp)
        write_card(run_dir, tmp, "merged")
        _copy_reproduce(run_dir, tmp)  # the card points to it, in the zip and on the Hub (without the rows)

    with export_lock:
        return replace_folder(RunFolder(run_dir).exports_dir / "merged", write)


def check_repo_id(repo_id: str) -> str:
    """The repository id stripped, or SettingsError unless it has the Hub's owner/name form."""
    repo_id = (repo_id or "").strip()
    if not _REPO_ID.fullmatch(repo_id) or ".." in repo_id or "--" in repo_id or repo_id.endswith(".git"):
        raise SettingsError(f"{quote(repo_id)} is not a valid Hub repository id; use the form owner/name "
                            "(letters, digits, -, _ and .).")
    return repo_id


def _push_error(exc: Exception, repo_id: str) -> StudioError:
    """One sentence for a failed create/upload; the exception's own text is never shown (it may quote headers)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, (ConnectionError, TimeoutError)) or names & _TRANSPORT_ERRORS:
        return HubUnavailableError(OFFLINE_MESSAGE)
    if status in (401, 403) or "RepositoryNotFoundError" in names:
        owner = repo_id.split("/")[0]
        return SettingsError(f"The Hugging Face Hub rejected the token for {owner}; use a token with write access "
                             "to that account or organisation.")
    detail = f"HTTP {status}" if status else type(exc).__name__
    return StudioError(f"The Hugging Face Hub refused the upload to {repo_id} ({detail}); nothing was pushed.")


def _scrubbed(exc: StudioError, token: str) -> StudioError:
    """The same error with the token blanked out of its message (in case it was pasted into the wrong box)."""
    return type(exc)(str(exc).replace(token, "***")) if token and token in str(exc) else exc


def _upload(api: Any, repo_id: str, folder: Path, token: str, private: bool, what: str) -> str:
    try:
        url = api.create_repo(repo_id, token=token, private=private, repo_type="model", exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), token=token, repo_type="model",
                          commit_message=f"Upload {what} from Instruction-Tuning Studio", ignore_patterns=PUSH_IGNORE)
    except Exception as exc:  # noqa: BLE001 - every Hub failure becomes one typed sentence
        raise _push_error(exc, repo_id) from None
    return str(url)


def fresh_merged_folder(run_dir: Path, model: Any = None, base_loader: BaseLoader | None = None,
                        token: str | None = None) -> Path:
    """exports/merged/, merged again when missing or older than the adapter (a resumed run saved a newer one)."""
    folder, adapter = RunFolder(run_dir).exports_dir / "merged", adapter_folder(run_dir) / ADAPTER_FILES[1]
    if not (folder / "config.json").is_file() or (folder / "config.json").stat().st_mtime < adapter.stat().st_mtime:
        folder = merge_adapter(run_dir, model=model, base_loader=base_loader, token=token)
    return folder


def zip_merged(run_dir: Path, model: Any = None, base_loader: BaseLoader | None = None, token: str | None = None,
               progress: Callable[[float, str], None] | None = None) -> Path:
    """Write exports/<run-id>-merged.zip: the merged model, tokenizer, model card and (for Gemma) its terms."""
    say = progress or (lambda fraction, message: None)
    n_params = base_parameter_count(RunFolder(run_dir).read_settings())
    if n_params:  # the merged fp32 weights, then the zip of them: refused before either is written
        check_disk(2 * 4 * n_params, RunFolder(run_dir).exports_dir, "Writing the merged model and its zip")
    say(0.05, "Merging the adapter into the base weights")
    folder = fresh_merged_folder(run_dir, model, base_loader, token)
    top, exports = f"{run_dir.name}-merged", RunFolder(run_dir).exports_dir
    target = exports / f"{top}.zip"
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    with export_lock:
        write_card(run_dir, folder, "merged")  # the card shows the latest GGUF check too
        check_disk(sum(p.stat().st_size for p in files), exports, "Writing the merged model zip")
        with replacing(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for i, path in enumerate(files):
                # Float weights barely compress, so deflating them would spend CPU time in proportion to the
                # model's size for almost no smaller file: store them, deflate the small text files.
                kind = zipfile.ZIP_STORED if path.suffix in (".safetensors", ".bin") else zipfile.ZIP_DEFLATED
                archive.write(path, f"{top}/{path.relative_to(folder).as_posix()}", compress_type=kind)
                say(0.5 + 0.5 * (i + 1) / len(files), f"Zipping {path.name}")
    return target


def base_parameter_count(settings: StudioSettings) -> int | None:
    """Parameters of the base model, read from its safetensors headers when its files are on this machine."""
    from studio.model.embedded import embedded_cache_dir

    name = settings.model.model.strip()
    folder = embedded_cache_dir() if name == EMBEDDED_MODEL else Path(name).expanduser()
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    total = 0
    for path in files:
        with open(path, "rb") as fh:
            header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
    return total or None


def _push_merged_folder(run_dir: Path, repo_id: str, base_loader: BaseLoader | None, token: str) -> Path:
    folder = fresh_merged_folder(run_dir, base_loader=base_loader, token=token)
    with export_lock:
        write_card(run_dir, folder, "merged", repo_id)  # the card's snippets name the repository
    return folder


def push_to_hub(run_dir: Path, repo_id: str, token: str | None, what: str = "adapter", private: bool = True,
                api: Any = None, base_loader: BaseLoader | None = None) -> str:
    """Create (or reuse) a Hub model repository and upload the adapter or merged export; returns its URL."""
    token = (token or "").strip()
    try:
        return _push(run_dir, check_repo_id(repo_id), token, what, private, api, base_loader)
    except StudioError as exc:
        raise _scrubbed(exc, token) from None


def _push(run_dir: Path, repo_id: str, token: str, what: str, private: bool, api: Any,
          base_loader: BaseLoader | None) -> str:
    if what not in ("adapter", "merged"):
        raise SettingsError(f"Choose adapter or merged to push, not {quote(what)}.")
    if not token:
        raise SettingsError("Pushing to the Hub needs a Hugging Face token with write access; it is used once "
                            "and never saved.")
    adapter_folder(run_dir)
    if not hub.hub_reachable():
        raise HubUnavailableError(OFFLINE_MESSAGE)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()  # no token held: it is passed to each call and forgotten with this frame
    if what == "merged":
        return _upload(api, repo_id, _push_merged_folder(run_dir, repo_id, base_loader, token), token, private, what)
    exports = RunFolder(run_dir).exports_dir
    exports.mkdir(parents=True, exist_ok=True)
    # A private staging folder: the card names this repository, and a zip made meanwhile must not see it.
    with tempfile.TemporaryDirectory(prefix=".push-", dir=exports) as tmp:
        with export_lock:
            folder = stage_adapter(run_dir, Path(tmp) / "upload", repo_id)
        return _upload(api, repo_id, folder, token, private, what)
