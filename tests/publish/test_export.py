"""Exports: the adapter zip reloads into the same model, the merged model matches it, and Hub pushes keep no token."""
from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from studio.errors import HubUnavailableError, RunError, SettingsError, StudioError
from studio.model.loading import LoadedModel
from studio.publish import export
from tests.builders import make_finished_run
from tests.tiny import make_tiny_model

FAKE_TOKEN = "hf_FAKEtoken1234567890abcdefSECRET"
def _ids(tokenizer) -> torch.Tensor:
    return tokenizer(["### Instruction:\nUppercase the word.\n\n### Output:\n"], return_tensors="pt")["input_ids"]


def _same_outputs(a, b, tokenizer, atol: float = 1e-5) -> None:
    ids = _ids(tokenizer)
    with torch.no_grad():
        assert torch.allclose(a(ids).logits, b(ids).logits, atol=atol)
        kwargs = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
        assert torch.equal(a.generate(ids, **kwargs), b.generate(ids, **kwargs))


@pytest.fixture()
def finished(runs_dir, tiny_tokenizer):
    return make_finished_run(runs_dir, tiny_tokenizer)


def test_zip_reloads_into_the_same_model(finished, tiny_tokenizer, tmp_path):
    from peft import PeftModel

    run_dir, model = finished
    path = export.zip_adapter(run_dir)
    assert path == run_dir / "exports" / f"{run_dir.name}-adapter.zip"
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "unzipped")
    top = f"{run_dir.name}-adapter"
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "README.md", "loss.svg",
                 "NOTICE", "reproduce/sft_config.yaml", "reproduce/train_prompt_completion.jsonl"):
        assert f"{top}/{name}" in names
    folder = tmp_path / "unzipped" / top
    reloaded = PeftModel.from_pretrained(make_tiny_model(tiny_tokenizer), str(folder)).eval()
    _same_outputs(model, reloaded, tiny_tokenizer, atol=1e-6)
    assert AutoTokenizer.from_pretrained(str(folder)).encode("apple banana") == tiny_tokenizer.encode("apple banana")


def test_zip_names_the_hub_base_model_and_carries_our_card(finished):
    run_dir, _ = finished
    staged = run_dir / "exports" / f"{run_dir.name}-adapter"
    export.zip_adapter(run_dir)
    config = json.loads((staged / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "google/gemma-3-270m"
    assert "Instruction-Tuning Studio" in (staged / "README.md").read_text()
    export.zip_adapter(run_dir)  # a second export replaces the first cleanly
    assert not list((run_dir / "exports").glob(".*.tmp"))


def test_merge_keeps_the_callers_model_and_matches_it(finished, tiny_tokenizer):
    run_dir, model = finished
    ids = _ids(tiny_tokenizer)
    with torch.no_grad():
        before = model(ids).logits.clone()
    folder = export.merge_adapter(run_dir, model=model)
    assert folder == run_dir / "exports" / "merged"
    assert (folder / "model.safetensors").is_file() and (folder / "README.md").is_file()
    assert not list(folder.glob("adapter_*"))
    merged = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    _same_outputs(model, merged, tiny_tokenizer)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, before)  # the caller's adapter model still has its LoRA
    assert hasattr(model, "disable_adapter")
    assert AutoTokenizer.from_pretrained(str(folder)).encode("kite") == tiny_tokenizer.encode("kite")


def test_merge_from_a_fresh_base_with_an_injected_loader(finished, tiny_tokenizer):
    run_dir, model = finished
    calls = []

    def loader(model_settings, token=None):
        calls.append((model_settings.model, token))
        return LoadedModel(make_tiny_model(tiny_tokenizer), tiny_tokenizer, "tiny", "local", 0.0, False)

    folder = export.merge_adapter(run_dir, base_loader=loader, token="t")
    assert calls == [("embedded:gemma-3-270m", "t")]
    merged = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    _same_outputs(model, merged, tiny_tokenizer)


def test_exports_need_a_saved_adapter(runs_dir, tiny_tokenizer):
    run_dir, _ = make_finished_run(runs_dir, tiny_tokenizer, adapter=False)
    for call in (lambda: export.zip_adapter(run_dir), lambda: export.merge_adapter(run_dir),
                 lambda: export.push_to_hub(run_dir, "me/model", FAKE_TOKEN)):
        with pytest.raises(RunError, match="no saved adapter"):
            call()


@pytest.mark.parametrize("repo_id", ["", "noslash", "a/b/c", "me/bad name", "me/x--y", "me/x..y", "me/m.git",
                                     "-me/model", "me/" + "x" * 97])
def test_bad_repo_ids_are_refused(finished, repo_id):
    with pytest.raises(SettingsError, match="not a valid Hub repository id"):
        export.push_to_hub(finished[0], repo_id, FAKE_TOKEN)


def test_push_needs_a_token_and_a_reachable_hub(finished, monkeypatch):
    run_dir, _ = finished
    with pytest.raises(SettingsError, match="needs a Hugging Face token"):
        export.push_to_hub(run_dir, "me/model", "  ")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError) as caught:
        export.push_to_hub(run_dir, "me/model", FAKE_TOKEN)
    assert str(caught.value) == export.OFFLINE_MESSAGE


def test_a_token_pasted_as_repo_id_is_not_echoed(finished):
    with pytest.raises(SettingsError) as caught:
        export.push_to_hub(finished[0], FAKE_TOKEN, FAKE_TOKEN)
    assert FAKE_TOKEN not in str(caught.value)


class FakeApi:
    """Records create_repo/upload_folder calls and copies what would be uploaded (honouring ignore_patterns)."""

    def __init__(self, copy_to: Path, fail: Exception | None = None):
        self.copy_to, self.fail, self.calls = copy_to, fail, []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        if self.fail is not None:
            raise self.fail
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        from huggingface_hub.utils import filter_repo_objects

        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))
        root = Path(kwargs["folder_path"])
        files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
        for rel in filter_repo_objects(files, ignore_patterns=kwargs["ignore_patterns"]):
            (self.copy_to / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.copy_to / rel).write_bytes((root / rel).read_bytes())


def _grep(folder: Path, needle: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_mocked_adapter_push_uploads_the_card_and_never_stores_the_token(finished, tmp_path, monkeypatch, caplog):
    run_dir, _ = finished
    monkeypatch.setattr("studio.data.hub.hub_reachable", lambda: True)
    api = FakeApi(tmp_path / "uploaded")
    caplog.set_level(logging.DEBUG)
    url = export.push_to_hub(run_dir, " me/tuned-model ", FAKE_TOKEN, api=api)
    assert url == "https://huggingface.co/me/tuned-model"
    (_, repo, create), (name, _, _) = api.calls
    assert name == "upload_folder"
    assert repo == "me/tuned-model" and create["private"] is True and create["token"] == FAKE_TOKEN
    uploaded = tmp_path / "uploaded"
    assert (uploaded / "adapter_model.safetensors").is_file() and (uploaded / "reproduce" / "sft_config.yaml").is_file()
    assert not list(uploaded.rglob("*.jsonl"))  # the training rows stay out of the Hub
    assert 'PeftModel.from_pretrained(base, "me/tuned-model")' in (uploaded / "README.md").read_text()
    assert not list((run_dir / "exports").glob(".push-*"))
    for folder in (run_dir, uploaded):
        assert _grep(folder, FAKE_TOKEN) == []
    assert FAKE_TOKEN not in caplog.text


def test_mocked_merged_push_merges_first(finished, tiny_tokenizer, tmp_path, monkeypatch):
    run_dir, _ = finished
    monkeypatch.setattr("studio.data.hub.hub_reachable", lambda: True)
    loader = lambda s, token=None: LoadedModel(make_tiny_model(tiny_tokenizer), tiny_tokenizer, "t", "local", 0, False)
    api = FakeApi(tmp_path / "uploaded")
    export.push_to_hub(run_dir, "me/merged", FAKE_TOKEN, what="merged", private=False, api=api, base_loader=loader)
    assert api.calls[0][2]["private"] is False
    assert (tmp_path / "uploaded" / "model.safetensors").is_file()
    assert 'from_pretrained("me/merged")' in (tmp_path / "uploaded" / "README.md").read_text()
    assert _grep(run_dir, FAKE_TOKEN) == []
    weights = run_dir / "exports" / "merged" / "model.safetensors"
    first = weights.stat().st_mtime_ns
    export.push_to_hub(run_dir, "me/merged", FAKE_TOKEN, what="merged", api=api, base_loader=loader)
    assert weights.stat().st_mtime_ns == first  # an up-to-date merge is reused
    adapter = run_dir / "adapter" / "adapter_model.safetensors"
    os.utime(adapter, ns=(first + 10**9, first + 10**9))  # a resumed run saved a newer adapter
    export.push_to_hub(run_dir, "me/merged", FAKE_TOKEN, what="merged", api=api, base_loader=loader)
    assert weights.stat().st_mtime_ns != first


def _http_error(status: int) -> Exception:
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create", headers={"authorization": FAKE_TOKEN})
    return HfHubHTTPError(f"{status} error for {FAKE_TOKEN}", response=httpx2.Response(status, request=request))


@pytest.mark.parametrize(("failure", "kind", "words"), [
    (_http_error(401), SettingsError, "rejected the token for me"),
    (_http_error(403), SettingsError, "rejected the token for me"),
    (_http_error(500), StudioError, "HTTP 500"),
    (ConnectionError("down"), HubUnavailableError, "cannot be reached"),
])
def test_push_failures_are_one_sentence_without_the_token(finished, tmp_path, monkeypatch, failure, kind, words):
    monkeypatch.setattr("studio.data.hub.hub_reachable", lambda: True)
    with pytest.raises(kind) as caught:
        export.push_to_hub(finished[0], "me/model", FAKE_TOKEN, api=FakeApi(tmp_path, fail=failure))
    message = str(caught.value)
    assert words in message and FAKE_TOKEN not in message and message.count(". ") == 0
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_push_rejects_an_unknown_kind(finished):
    with pytest.raises(SettingsError, match="adapter or merged"):
        export.push_to_hub(finished[0], "me/model", FAKE_TOKEN, what="gguf")


def test_merged_zip_holds_the_model_card_and_gemma_terms(finished, tiny_tokenizer, tmp_path):
    run_dir, model = finished
    progress = []
    path = export.zip_merged(run_dir, model=model, progress=lambda f, m: progress.append(m))
    assert path == run_dir / "exports" / f"{run_dir.name}-merged.zip" and progress
    top = f"{run_dir.name}-merged"
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        stored = archive.getinfo(f"{top}/model.safetensors").compress_type
        archive.extractall(tmp_path / "unzipped")
    for name in ("model.safetensors", "config.json", "tokenizer.json", "README.md", "loss.svg", "NOTICE",
                 "GEMMA_TERMS.html"):
        assert f"{top}/{name}" in names
    assert stored == zipfile.ZIP_STORED  # weights do not compress; storing them saves the CPU a minute
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "unzipped" / top), dtype=torch.float32).eval()
    _same_outputs(model, merged, tiny_tokenizer)


def test_merged_zip_checks_the_disk_first(finished, monkeypatch):
    run_dir, model = finished
    export.merge_adapter(run_dir, model=model)
    monkeypatch.setattr(export.shutil, "disk_usage", lambda path: _Usage(1000))
    full = r"^Writing the merged model (and its )?zip needs about .* GB of disk but only 0.00 GB is free"
    with pytest.raises(StudioError, match=full):
        export.zip_merged(run_dir, model=model)
    assert not list((run_dir / "exports").glob("*.zip"))


class _Usage:
    def __init__(self, free: int) -> None:
        self.free = free


def test_base_parameter_count_reads_the_safetensors_headers(tiny_tokenizer, tmp_path):
    from studio.settings import StudioSettings
    from tests.tiny import save_tiny_model

    folder = save_tiny_model(tmp_path / "tiny", tiny_tokenizer)
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    expected = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    assert export.base_parameter_count(StudioSettings.from_dict({"model": {"model": str(folder)}})) == expected
    assert export.base_parameter_count(StudioSettings.from_dict({"model": {"model": "someone/remote"}})) is None
