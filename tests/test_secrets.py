"""Secrets and remote code: a Hugging Face token reaches the calls that need it and nothing else (no file, log,
report, export or exception message), and model code from a repository runs only when the user turns it on.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import pytest

from studio import cli, presets, runs
from studio.data.dataset import load_source
from studio.errors import StudioError
from studio.jobqueue import JobQueue
from studio.jobs import TrainingJob
from studio.model import loading
from studio.pipeline import compare_run, from_job
from studio.publish import export
from studio.settings import GenerationSettings, ModelSettings, StudioSettings, apply_overrides
from tests.tiny import WORDS as TINY_WORDS
from tests.tiny import make_tiny_model, tiny_loader

TOKEN = "hf_FAKEtoken0123456789abcdefSECRETxyz"
WORDS = TINY_WORDS[:12]
HUB_ROWS = [{"instruction": "Uppercase the word.", "input": w, "output": w.upper()} for w in WORDS]


def files_holding(folder: Path, needle: str) -> list[Path]:
    """Every file under `folder` whose bytes contain `needle` (any encoding a token could end up in as is)."""
    return [p for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


class FakeApi:
    """Stands in for huggingface_hub.HfApi: records the token it is given and checks the uploaded files."""

    instances: ClassVar[list[FakeApi]] = []

    def __init__(self, *args, **kwargs) -> None:
        assert TOKEN not in repr((args, kwargs))  # the client is not built holding the token
        self.tokens: list[str] = []
        self.uploads_with_token: list[Path] = []
        FakeApi.instances.append(self)

    def create_repo(self, repo_id, token=None, **kwargs):
        self.tokens.append(token)
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, folder_path, token=None, **kwargs):
        self.tokens.append(token)
        self.uploads_with_token += files_holding(Path(folder_path), TOKEN)


@pytest.fixture()
def hub_online(monkeypatch):
    """The Hub 'answers': reachable, a private dataset that needs the token, and HfApi replaced."""
    import datasets

    seen: list[str | None] = []

    def load_dataset(dataset_id, split=None, token=None, **kwargs):
        seen.append(token)
        return datasets.Dataset.from_list(HUB_ROWS)

    monkeypatch.setattr("studio.data.hub.hub_reachable", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    FakeApi.instances = []
    return seen


class RecordingLoader:
    """A base-model loader (injected as model_loader/base_loader) that returns the tiny model and records tokens."""

    def __init__(self) -> None:
        self.tokens: list[str | None] = []

    def __call__(self, settings, token=None, **kwargs):
        self.tokens.append(token)
        return tiny_loader(settings)


@pytest.fixture()
def tiny_base() -> RecordingLoader:
    """A fresh recording loader for one test."""
    return RecordingLoader()


def hub_settings(**data) -> StudioSettings:
    return apply_overrides(StudioSettings(), {
        "data": {"dataset": "someone/private-words", "template": "alpaca", "max_length": 64,
                 "max_test_examples": 2, **data},
        "train": {"max_steps": 2, "batch_size": 4, "threads": 1},
        "generation": {"max_new_tokens": 4},
    })


def test_a_full_run_export_and_push_never_write_the_token(tmp_path, hub_online, tiny_base, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    root = tmp_path / "runs"
    job = TrainingJob(hub_settings(), root, owner="me", token=TOKEN, queue=JobQueue(), model_loader=tiny_base)
    job.start()
    assert job.join(timeout=60) and job.status == "completed", job.error
    assert hub_online == [TOKEN] and tiny_base.tokens == [TOKEN]  # the token did reach the dataset and model loads
    compare_run(from_job(job), GenerationSettings(max_new_tokens=4))
    export.zip_adapter(job.run_dir)
    export.merge_adapter(job.run_dir, model=job.model, tokenizer=job.tokenizer, token=TOKEN)
    assert export.push_to_hub(job.run_dir, "me/words", TOKEN).endswith("me/words")
    assert export.push_to_hub(job.run_dir, "me/words-merged", TOKEN, what="merged",
                              base_loader=tiny_base).endswith("me/words-merged")
    assert [api.tokens for api in FakeApi.instances] == [[TOKEN, TOKEN], [TOKEN, TOKEN]]
    assert [api.uploads_with_token for api in FakeApi.instances] == [[], []]

    run_dir = job.run_dir
    for name in ("settings.json", "run.json", "metrics.jsonl", "report.html", "report.md", "comparison.jsonl",
                 "adapter/adapter_config.json", "reproduce/sft_config.yaml", f"exports/{run_dir.name}-adapter.zip",
                 "exports/merged/README.md", "checkpoints"):
        assert (run_dir / name).exists(), name  # the grep below covers every kind of file a run writes
    assert files_holding(tmp_path, TOKEN) == []
    in_memory = [job.message, job.error, *job.logs(), repr(job.history()), repr(runs.read_run(root, job.run_id))]
    assert not [text for text in in_memory if TOKEN in text]
    captured = capsys.readouterr()
    assert TOKEN not in caplog.text + captured.out + captured.err


def test_the_cli_never_prints_or_writes_the_token(tmp_path, hub_online, tiny_base, monkeypatch, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    root = tmp_path / "runs"
    code = cli.main(["train", "--data", "someone/private-words", "--template", "alpaca", "--token", TOKEN,
                     "--runs-dir", str(root), "--set", "train.max_steps=2", "--set", "train.batch_size=4",
                     "--set", "train.threads=1", "--set", "data.max_test_examples=2",
                     "--set", "generation.max_new_tokens=4"], model_loader=tiny_base)
    assert code == 0 and hub_online == [TOKEN] and tiny_base.tokens == [TOKEN]
    [info] = runs.list_runs(root)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert cli.main(["export", info.run_id, "--runs-dir", str(root)], model_loader=tiny_base) == 0
    assert cli.main(["push", info.run_id, "--repo", "me/words", "--runs-dir", str(root)], model_loader=tiny_base) == 0
    assert FakeApi.instances[-1].tokens == [TOKEN, TOKEN]
    assert cli.main(["push", info.run_id, "--repo", TOKEN, "--runs-dir", str(root)]) == 2  # pasted in the wrong box
    captured = capsys.readouterr()
    assert "error: '***' is not a valid Hub repository id" in captured.err
    assert TOKEN not in captured.out + captured.err + caplog.text
    assert files_holding(tmp_path, TOKEN) == []


def leaky(exc_type=RuntimeError):
    """A callable raising what an HTTP client might: an error quoting the request, token included."""
    def fail(*args, **kwargs):
        raise exc_type(f"401 Client Error: Unauthorized; request headers {{'authorization': 'Bearer {TOKEN}'}}")

    return fail


def test_a_failed_hub_dataset_load_does_not_quote_the_token(monkeypatch):
    import datasets

    monkeypatch.setattr("studio.data.hub.hub_reachable", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", leaky())
    with pytest.raises(StudioError) as info:
        load_source("someone/private-words", token=TOKEN)
    assert TOKEN not in str(info.value) and "someone/private-words" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("what", ["model", "tokenizer"])
def test_a_failed_model_load_does_not_quote_the_token(monkeypatch, tmp_path, what):
    import transformers

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", leaky(OSError))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", leaky(OSError))
    settings = ModelSettings(model="someone/private-model")
    with pytest.raises(StudioError) as info:
        (loading.load_base_model if what == "model" else loading.load_tokenizer)(settings, token=TOKEN)
    assert "could not be loaded" in str(info.value) and "***" in str(info.value)
    assert TOKEN not in str(info.value) and info.value.__cause__ is None and info.value.__suppress_context__


def test_a_failed_push_does_not_quote_the_token(tmp_path, tiny_tokenizer, monkeypatch):
    from tests.builders import make_finished_run

    run_dir, _ = make_finished_run(tmp_path / "runs", tiny_tokenizer)
    monkeypatch.setattr("studio.data.hub.hub_reachable", lambda: True)
    api = type("Api", (), {"create_repo": leaky(), "upload_folder": leaky()})()
    with pytest.raises(StudioError) as info:
        export.push_to_hub(run_dir, "me/words", TOKEN, api=api)
    assert "refused the upload" in str(info.value) and TOKEN not in str(info.value)
    assert info.value.__cause__ is None and files_holding(tmp_path, TOKEN) == []


def test_a_job_that_fails_quoting_the_token_does_not_store_it(tmp_path):
    job = TrainingJob(hub_settings(dataset="sample:word_tasks"), tmp_path / "runs", token=TOKEN, queue=JobQueue(),
                      model_loader=leaky())
    job.start()
    assert job.join(timeout=60) and job.status == "failed"
    assert job.error.startswith("Training failed with RuntimeError: 401 Client Error") and "***" in job.error
    assert TOKEN not in job.error + "".join(job.logs())
    assert files_holding(tmp_path, TOKEN) == []


# ---- trust_remote_code --------------------------------------------------------------------------------------------

@pytest.fixture()
def captured_loads(monkeypatch, tiny_tokenizer):
    """Replace the Auto* loaders; record the keyword arguments each call got."""
    import transformers

    calls: list[tuple[str, dict]] = []

    def model(name, **kwargs):
        calls.append(("model", kwargs))
        return make_tiny_model(tiny_tokenizer)

    def tokenizer(name, **kwargs):
        calls.append(("tokenizer", kwargs))
        return tiny_tokenizer

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", model)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tokenizer)
    return calls


@pytest.fixture()
def model_folder(tmp_path) -> str:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return str(folder)


@pytest.mark.parametrize("source", ["folder", "hub"])
def test_remote_code_is_off_by_default(captured_loads, model_folder, source):
    name = model_folder if source == "folder" else "someone/some-model"
    assert ModelSettings().trust_remote_code is False
    loading.load_base_model(ModelSettings(model=name))
    loading.load_tokenizer(ModelSettings(model=name))
    assert [kind for kind, _ in captured_loads] == ["model", "tokenizer", "tokenizer"]
    assert all(kwargs["trust_remote_code"] is False for _, kwargs in captured_loads)


@pytest.mark.parametrize("source", ["folder", "hub"])
def test_remote_code_runs_only_when_turned_on(captured_loads, model_folder, source):
    name = model_folder if source == "folder" else "someone/some-model"
    loading.load_base_model(ModelSettings(model=name, trust_remote_code=True), token=TOKEN)
    assert [kind for kind, _ in captured_loads] == ["model", "tokenizer"]
    assert all(kwargs["trust_remote_code"] is True and kwargs["token"] == TOKEN for _, kwargs in captured_loads)


def test_the_embedded_model_loads_without_remote_code(captured_loads, monkeypatch, tmp_path, tiny_tokenizer):
    monkeypatch.setattr(loading, "ensure_embedded_cache", lambda: tmp_path)
    monkeypatch.setattr(loading, "_load_cached_tokenizer", lambda folder: tiny_tokenizer)
    loaded = loading.load_base_model(ModelSettings())
    assert loaded.source == "embedded" and [kind for kind, _ in captured_loads] == ["model"]
    assert captured_loads[0][1].get("trust_remote_code", False) is False


def test_no_shipped_preset_turns_remote_code_on():
    for name in presets.list_presets():
        assert presets.load_preset(name).model.trust_remote_code is False, name


# ---- the UI: a pasted token, and "Sign in with Hugging Face" on a Space --------------------------------------------

OAUTH_TOKEN = "hf_oauth_FAKE0123456789abcdefSIGNEDIN"


def mocked_sign_in() -> dict:
    """What Gradio keeps in the session after a Hugging Face sign-in (its local mock asks the Hub; this does not)."""
    import time

    return {"access_token": OAUTH_TOKEN, "token_type": "bearer", "scope": "openid profile write-repos",
            "expires_at": int(time.time()) + 3600,
            "userinfo": {"name": "A Visitor", "preferred_username": "visitor", "picture": "",
                         "profile": "https://huggingface.co/visitor"}}


@pytest.fixture()
def signed_in_studio(tmp_path, hub_online, monkeypatch):
    """The studio with OAuth on (as on a Space with hf_oauth: true), the tiny model, and the Hub faked."""
    import gradio.oauth

    from tests.browser_utils import launch_studio

    monkeypatch.setattr(gradio.oauth, "_get_mocked_oauth_info", mocked_sign_in)
    demo, url = launch_studio(tmp_path / "runs", oauth=True)
    yield url
    demo.close()


def session_cookie(url: str) -> str:
    """Sign in as a browser does (the login route redirects to the callback, which sets the session cookie)."""
    import httpx

    login = httpx.get(url + "login/huggingface", follow_redirects=False)
    callback = httpx.get(httpx.URL(url).join(login.headers["location"]), follow_redirects=False)
    return callback.headers["set-cookie"].split(";")[0]  # Secure cookie: httpx would not send it back over http


def test_the_ui_pushes_with_a_sign_in_or_a_pasted_token_and_writes_neither(signed_in_studio, tmp_path, caplog,
                                                                           capsys):
    from gradio_client import Client

    from tests.ui.test_app_api import QUICK_TRAIN, wait_for_job

    caplog.set_level(logging.DEBUG)
    visitor = Client(signed_in_studio, verbose=False, headers={"Cookie": session_cookie(signed_in_studio)})
    visitor.predict(api_name="/load_data")
    visitor.predict(**QUICK_TRAIN, api_name="/train")
    run_id = wait_for_job(visitor)["run_id"]
    # Signed in, no token pasted: a bare name goes to the visitor's own namespace with the visitor's token.
    status = visitor.predict(run_id=run_id, repo="words", token="", what="adapter", api_name="/push_to_hub")
    assert status.endswith("https://huggingface.co/visitor/words.") and FakeApi.instances[-1].tokens == [OAUTH_TOKEN] * 2
    # A pasted token (local use) wins over the sign-in.
    visitor.predict(run_id=run_id, repo="me/words", token=TOKEN, what="merged", api_name="/push_to_hub")
    assert FakeApi.instances[-1].tokens == [TOKEN, TOKEN]
    # An API client hands its own token to the push endpoint (Gradio's oauth_token) instead of the token box.
    api_client = Client(signed_in_studio, verbose=False, oauth_token=OAUTH_TOKEN)
    api_client.predict(api_name="/load_data")
    api_client.predict(**QUICK_TRAIN, api_name="/train")
    own_run = wait_for_job(api_client)["run_id"]
    api_client.predict(run_id=own_run, repo="visitor/other", token="", api_name="/push_to_hub")
    assert FakeApi.instances[-1].tokens == [OAUTH_TOKEN] * 2
    assert all(api.uploads_with_token == [] for api in FakeApi.instances)
    for secret in (TOKEN, OAUTH_TOKEN):
        assert files_holding(tmp_path, secret) == []
        captured = capsys.readouterr()
        assert secret not in caplog.text + captured.out + captured.err
