"""Bad input that is not a data file (tests/test_bad_data.py has those): templates, chats, settings, presets,
models, Hub ids while offline, deleted run folders, run ids and Hub pushes. Each must end in one typed exception
whose message is one sentence the UI can show as it is.
"""
from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from studio import pipeline, presets, runs
from studio.data.convert import convert_records, records_of
from studio.data.dataset import load_source
from studio.data.templates import get_template
from studio.errors import (
    DataError,
    HubUnavailableError,
    ModelError,
    RunError,
    SettingsError,
    ShapeError,
    StudioError,
    TemplateError,
)
from studio.examples import Example
from studio.jobqueue import JobQueue
from studio.jobs import TrainingJob
from studio.model import loading
from studio.model.loading import LoadedModel
from studio.publish import export
from studio.publish.report import write_report
from studio.settings import (
    DataSettings,
    GenerationSettings,
    LoraSettings,
    ModelSettings,
    StudioSettings,
    TrainSettings,
    apply_overrides,
    parse_assignments,
)
from studio.train import config as train_config
from studio.train import steps
from tests.tiny import WORDS as TINY_WORDS
from tests.tiny import make_tiny_model, write_uppercase_rows

WORDS = TINY_WORDS[:12]


def assert_one_sentence(message: str) -> None:
    """What the UI shows as is: one line, one sentence, no traceback."""
    assert message and message == message.strip(), repr(message)
    assert "\n" not in message and "\r" not in message and "Traceback" not in message, repr(message)
    assert message.endswith("."), message
    # A sentence boundary is ". " followed by a capital ("e.g. train" and paths are fine).
    assert not re.search(r"[.!?] +[A-Z]", message[:-1]), message


class Ctx:
    """What a case may need: a temp folder, a runs folder, the tiny tokenizer and monkeypatch."""

    def __init__(self, tmp_path: Path, tokenizer, monkeypatch) -> None:
        self.tmp, self.tokenizer, self.monkeypatch = tmp_path, tokenizer, monkeypatch
        self.root = tmp_path / "runs"
        self.root.mkdir(exist_ok=True)

    def text_file(self, name: str, text: str) -> str:
        """A small file in the temp folder; its path."""
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    def run(self, status: str = "completed", owner: str = "", adapter: bool = False) -> runs.RunInfo:
        """A run folder with the given status (and fake adapter files when asked)."""
        info = runs.create_run(self.root, StudioSettings(), owner)
        runs.update_run(info.path, status=status)
        if adapter:
            examples = [Example(f"Uppercase {w}.", w.upper()) for w in WORDS]
            steps.write_splits(info.path, SimpleNamespace(train=examples[2:], test=examples[:2], validation=[]))
            (info.path / "adapter").mkdir()
            for name in export.ADAPTER_FILES:
                (info.path / "adapter" / name).write_text("{}")
        return info

    def deleted_run(self) -> runs.RunInfo:
        """A finished run whose folder was deleted underneath the studio."""
        info = self.run()
        shutil.rmtree(info.path)
        return info

    def folder(self, name: str, config: str | None = None) -> str:
        """A local folder, with a config.json holding `config` when given."""
        path = self.tmp / name
        path.mkdir()
        if config is not None:
            (path / "config.json").write_text(config)
        return str(path)


def chat_rows(*roles: str, column: str = "messages") -> list[dict]:
    """One in-memory chat row (as a Hub dataset gives it) with these roles in order."""
    return [{column: [{"role": r, "content": f"{r} says"} for r in roles]}]


def to_chat_examples(rows: list[dict]) -> list[Example]:
    """Rows through the loader's conversion, which refuses only when nothing is usable."""
    return convert_records(records_of(rows), "hub-chats").examples


def overrides(section: str, key: str, value) -> StudioSettings:
    return apply_overrides(StudioSettings(), {section: {key: value}})


def deleted_run_model(c: Ctx) -> pipeline.RunModel:
    """A RunModel (as Compare holds it) whose run folder was deleted after it was opened."""
    info = c.deleted_run()
    return pipeline.RunModel(info.run_id, info.path, make_tiny_model(c.tokenizer), c.tokenizer,
                             get_template("alpaca"), [Example("Say hi.", "Hi.")], StudioSettings())


class Rejecting:
    """A stand-in HfApi whose calls fail as the Hub does for a bad token (HTTP 401, the token quoted)."""

    def create_repo(self, *args, token=None, **kwargs):
        error = RuntimeError(f"401 Client Error: Unauthorized (Authorization: Bearer {token})")
        error.response = SimpleNamespace(status_code=401)
        raise error

    upload_folder = create_repo


def push_with_rejected_token(c: Ctx) -> None:
    c.monkeypatch.setattr(export.hub, "hub_reachable", lambda: True)
    export.push_to_hub(c.run(adapter=True).path, "me/adapter", "hf_rejected", api=Rejecting())


def hub_model_not_found(c: Ctx) -> None:
    """The Hub answered (no offline mode) that the id does not exist."""
    import transformers

    def missing(name, **kwargs):
        raise OSError(f"{name} is not a local folder and is not a valid model identifier listed on the Hub")

    c.monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", missing)
    loading.load_base_model(ModelSettings(model="nobody/no-such-model"))


# (case(ctx), expected exception class, substring of its message)
CASES = [
    # ---- custom and tokenizer templates ----
    pytest.param(lambda c: get_template("custom", "### {instruction}\n{answer}\n{output}"), TemplateError,
                 "unknown field {answer}", id="custom-unknown-field"),
    pytest.param(lambda c: get_template("custom", "### {instruction\n{output}"), TemplateError,
                 "unbalanced { or }", id="custom-unclosed-brace"),
    pytest.param(lambda c: get_template("custom", "### } {instruction}\n{output}"), TemplateError,
                 "unbalanced { or }", id="custom-stray-closing-brace"),
    pytest.param(lambda c: get_template("custom", "### {instruction}\n### Answer:\n"), TemplateError,
                 "must contain {output} exactly once", id="custom-missing-output"),
    pytest.param(lambda c: get_template("custom", "{instruction} {output} {output}"), TemplateError,
                 "must contain {output} exactly once", id="custom-output-twice"),
    pytest.param(lambda c: get_template("custom", "{instruction}\n{output}\n{input}"), TemplateError,
                 "must end with {output}", id="custom-field-after-output"),
    pytest.param(lambda c: get_template("custom", "{0}\n{output}"), TemplateError, "positional field {0}",
                 id="custom-positional-field"),
    pytest.param(lambda c: get_template("custom", "{instruction!r}\n{output}"), TemplateError, "must be plain",
                 id="custom-conversion"),
    pytest.param(lambda c: get_template("alpacca"), TemplateError, "Unknown template 'alpacca'",
                 id="unknown-template-name"),
    pytest.param(lambda c: get_template("tokenizer", tokenizer=c.tokenizer), TemplateError,
                 "tokenizer has no chat template", id="tokenizer-template-without-chat-template"),
    pytest.param(lambda c: get_template("tokenizer"), TemplateError, "needs the model's tokenizer",
                 id="tokenizer-template-without-a-model"),
    # ---- chats where nothing is usable (rows as a Hub dataset gives them); irregular ones are repaired below ----
    pytest.param(lambda c: to_chat_examples(chat_rows("user", "system", "assistant")), ShapeError,
                 "its only row was skipped (1 system turn mid-chat)", id="chat-system-in-the-middle"),
    pytest.param(lambda c: to_chat_examples(chat_rows("system")), ShapeError, "its only row was skipped (1 no answer)",
                 id="chat-only-a-system-turn"),
    pytest.param(lambda c: to_chat_examples(chat_rows("user", "robot")), ShapeError, "1 unknown role",
                 id="chat-unknown-role"),
    pytest.param(lambda c: to_chat_examples([{"messages": ["hello", "hi"]}]), ShapeError, "1 turn is not an object",
                 id="chat-turns-are-strings"),
    # ---- hyperparameters: out of range, inconsistent, wrong type ----
    pytest.param(lambda c: LoraSettings(r=0), SettingsError, "lora.r must be at least 1", id="lora-rank-0"),
    pytest.param(lambda c: overrides("lora", "r", 1000), SettingsError, "lora.r must be at most 512",
                 id="lora-rank-too-big"),
    pytest.param(lambda c: TrainSettings(learning_rate=-1e-4), SettingsError, "train.learning_rate must be at least",
                 id="negative-learning-rate"),
    pytest.param(lambda c: overrides("train", "learning_rate", "nan"), SettingsError,
                 "train.learning_rate must be a finite number", id="nan-learning-rate"),
    pytest.param(lambda c: overrides("train", "max_grad_norm", "inf"), SettingsError,
                 "train.max_grad_norm must be a finite number", id="infinite-grad-norm"),
    pytest.param(lambda c: DataSettings(test_fraction=1.0), SettingsError, "data.test_fraction must be below 1.0",
                 id="test-fraction-1"),
    pytest.param(lambda c: DataSettings(test_fraction=0.6, validation_fraction=0.4), SettingsError,
                 "must leave some rows for training", id="test-plus-validation-fraction-1"),
    pytest.param(lambda c: overrides("train", "batch_size", 0), SettingsError, "train.batch_size must be at least 1",
                 id="batch-size-0"),
    pytest.param(lambda c: overrides("train", "batch_size", 2.5), SettingsError, "train.batch_size must be a number",
                 id="fractional-batch-size"),
    pytest.param(lambda c: overrides("train", "lr_scheduler", "wavy"), SettingsError,
                 "train.lr_scheduler must be one of linear, cosine", id="unknown-scheduler"),
    pytest.param(lambda c: overrides("lora", "bias", "some"), SettingsError, "lora.bias must be one of",
                 id="unknown-lora-bias"),
    pytest.param(lambda c: overrides("train", "fast_loss", "maybe"), SettingsError,
                 "train.fast_loss must be true or false, not 'maybe'", id="bad-bool"),
    pytest.param(lambda c: overrides("train", "learning_rate", "fast"), SettingsError,
                 "train.learning_rate must be a number, not 'fast'", id="string-for-a-number"),
    pytest.param(lambda c: overrides("data", "max_length", 8), SettingsError, "data.max_length must be at least 16",
                 id="max-length-too-short"),
    pytest.param(lambda c: GenerationSettings(temperature=0.0), SettingsError,
                 "generation.temperature must be at least", id="temperature-0"),
    pytest.param(lambda c: overrides("train", "learnig_rate", 1e-4), SettingsError, "Unknown setting train.learnig_rate",
                 id="unknown-preset-key"),
    pytest.param(lambda c: apply_overrides(StudioSettings(), {"optimiser": {"lr": 1}}), SettingsError,
                 "Unknown settings section 'optimiser'", id="unknown-section"),
    pytest.param(lambda c: apply_overrides(StudioSettings(), {"train": 3}), SettingsError,
                 "must be a mapping of keys to values", id="section-not-a-mapping"),
    pytest.param(lambda c: parse_assignments(["train.learning_rate"]), SettingsError, "Expected section.key=value",
                 id="cli-assignment-without-value"),
    pytest.param(lambda c: presets.load_preset("no-such-preset"), SettingsError, "No preset named 'no-such-preset'",
                 id="unknown-preset-name"),
    pytest.param(lambda c: presets.load_preset("../../etc/passwd"), SettingsError,
                 "Preset names use lowercase letters", id="preset-name-path-traversal"),
    pytest.param(lambda c: presets.load_preset("/etc/passwd"), SettingsError, "Preset names use lowercase letters",
                 id="preset-name-absolute-path"),
    pytest.param(lambda c: train_config.resolve_precision("bf16"), SettingsError, "needs a GPU",
                 id="bf16-on-a-cpu"),
    pytest.param(lambda c: loading.load_base_model(ModelSettings(), load_in_4bit=True), SettingsError,
                 "needs a CUDA GPU", id="qlora-on-a-cpu"),
    pytest.param(lambda c: train_config.build_lora_config(LoraSettings(target_modules=["c_attn"]),
                                                      make_tiny_model(c.tokenizer)),
                 SettingsError, "lora.target_modules names c_attn", id="lora-target-module-not-in-model"),
    pytest.param(lambda c: ModelSettings(model="   "), SettingsError, "model.model must name a model",
                 id="empty-model-name"),
    # ---- base models: unknown ids, the Hub while offline, folders that are not models ----
    pytest.param(lambda c: loading.load_base_model(ModelSettings(model="someone/some-model")), HubUnavailableError,
                 "cannot be reached, so model 'someone/some-model' cannot be downloaded", id="hub-model-offline"),
    pytest.param(lambda c: loading.load_tokenizer(ModelSettings(model="someone/some-model")), HubUnavailableError,
                 "cannot be reached", id="hub-tokenizer-offline"),
    pytest.param(hub_model_not_found, ModelError, "'nobody/no-such-model' was not found on the Hugging Face Hub",
                 id="unknown-hub-model-id"),
    pytest.param(lambda c: loading.load_base_model(ModelSettings(model="not a model id!")), ModelError,
                 "does not exist", id="unknown-model-name"),
    pytest.param(lambda c: loading.load_base_model(ModelSettings(model="./missing-model-folder")), ModelError,
                 "The model folder ./missing-model-folder does not exist", id="missing-local-folder"),
    pytest.param(lambda c: loading.load_base_model(ModelSettings(model=c.folder("empty"))), ModelError,
                 "has no config.json", id="local-folder-without-config"),
    pytest.param(lambda c: loading.load_base_model(ModelSettings(model=c.folder("broken", "{not json"))), ModelError,
                 "could not be loaded", id="local-folder-with-broken-config"),
    # ---- dataset sources that are not files ----
    pytest.param(lambda c: load_source("someone/some-dataset", token="hf_x"), HubUnavailableError,
                 "dataset 'someone/some-dataset' cannot be downloaded", id="hub-dataset-offline"),
    pytest.param(lambda c: load_source("owner/name/extra"), DataError, "is not a valid Hugging Face dataset id",
                 id="hub-dataset-bad-id"),
    pytest.param(lambda c: load_source("someone/data", hub_split="train; rm"), DataError, "is not a valid split name",
                 id="hub-dataset-bad-split"),
    pytest.param(lambda c: load_source("sample:nothing"), DataError, "Unknown sample 'nothing'",
                 id="unknown-sample"),
    pytest.param(lambda c: load_source("   "), DataError, "No dataset was chosen", id="no-dataset"),
    # ---- column mappings that name what is not there ----
    pytest.param(lambda c: load_source(c.text_file("pairs.csv", "text,label\nhi,1\n"),
                                       column_map={"instruction": "text", "output": "answer"}), ShapeError,
                 "Column 'answer' (mapped to output) is not in the data, whose columns are 'text' and 'label'",
                 id="mapping-missing-column"),
    pytest.param(lambda c: load_source(c.text_file("pairs.csv", "text,label\nhi,1\n"), column_map={"answer": "text"}),
                 ShapeError, "names the unknown role 'answer'; use instruction, input, output or system",
                 id="mapping-unknown-role"),
    pytest.param(lambda c: load_source(c.text_file("questions.jsonl", '{"question": "Why?", "id": 1}\n')), ShapeError,
                 "none looks like an answer (output, answer, expected_answer, response, ...)", id="no-answer-column"),
    # ---- run folders deleted underneath, run ids that try to leave the runs folder ----
    pytest.param(lambda c: runs.read_run(c.root, c.deleted_run().run_id), RunError, "no longer exists",
                 id="read-deleted-run"),
    pytest.param(lambda c: pipeline.open_run(c.root, c.deleted_run().run_id), RunError, "no longer exists",
                 id="open-deleted-run"),
    pytest.param(lambda c: runs.delete_run(c.root, c.deleted_run().run_id), RunError, "no longer exists",
                 id="delete-deleted-run"),
    pytest.param(lambda c: write_report(c.deleted_run().path), RunError, "no longer exists",
                 id="report-on-deleted-run"),
    pytest.param(lambda c: pipeline.compare_run(deleted_run_model(c)), RunError, "no longer exists",
                 id="compare-deleted-run"),
    pytest.param(lambda c: export.zip_adapter(c.deleted_run().path), RunError, "no longer exists",
                 id="export-deleted-run"),
    pytest.param(lambda c: TrainingJob(StudioSettings(), c.root, resume_run=c.deleted_run().run_id), RunError,
                 "no longer exists", id="resume-deleted-run"),
    pytest.param(lambda c: runs.read_run(c.root, "../../etc/passwd"), RunError, "is not a valid run id",
                 id="run-id-traversal-read"),
    pytest.param(lambda c: runs.delete_run(c.root, "../runs"), RunError, "is not a valid run id",
                 id="run-id-traversal-delete"),
    pytest.param(lambda c: pipeline.open_run(c.root, "/etc"), RunError, "is not a valid run id",
                 id="run-id-absolute-open"),
    pytest.param(lambda c: TrainingJob(StudioSettings(), c.root, resume_run="20260101-000000-abcdef/.."), RunError,
                 "is not a valid run id", id="run-id-traversal-resume"),
    pytest.param(lambda c: runs.read_run(c.root, "20260101-000000-abcdef\n"), RunError, "is not a valid run id",
                 id="run-id-trailing-newline"),
    pytest.param(lambda c: runs.read_run(c.root, None), RunError, "is not a valid run id", id="run-id-none"),
    pytest.param(lambda c: TrainingJob(StudioSettings(), c.root, resume_run=c.run("completed").run_id), RunError,
                 "only a stopped, interrupted or failed run can be resumed", id="resume-completed-run"),
    pytest.param(lambda c: TrainingJob(StudioSettings(), c.root, resume_run=c.run("stopped").run_id), RunError,
                 "has no checkpoint to resume from", id="resume-without-checkpoint"),
    pytest.param(lambda c: runs.delete_run(c.root, c.run("training").run_id), RunError, "still active",
                 id="delete-active-run"),
    pytest.param(lambda c: runs.delete_run(c.root, c.run(owner="alice").run_id, owner="bob"), RunError,
                 "belongs to another session", id="delete-someone-elses-run"),
    # ---- Hub push: token and repository id ----
    pytest.param(lambda c: export.push_to_hub(c.run(adapter=True).path, "me/adapter", None), SettingsError,
                 "needs a Hugging Face token", id="push-without-token"),
    pytest.param(lambda c: export.push_to_hub(c.run(adapter=True).path, "me/adapter", "   "), SettingsError,
                 "needs a Hugging Face token", id="push-blank-token"),
    pytest.param(lambda c: export.push_to_hub(c.run(adapter=True).path, "my-adapter", "hf_x"), SettingsError,
                 "'my-adapter' is not a valid Hub repository id", id="push-repo-id-without-owner"),
    pytest.param(lambda c: export.push_to_hub(c.run(adapter=True).path, "../../etc", "hf_x"), SettingsError,
                 "is not a valid Hub repository id", id="push-repo-id-traversal"),
    pytest.param(lambda c: export.push_to_hub(c.run(adapter=True).path, "me/a/b", "hf_x"), SettingsError,
                 "is not a valid Hub repository id", id="push-repo-id-three-parts"),
    pytest.param(lambda c: export.push_to_hub(c.run(adapter=True).path, "me/x.git", "hf_x"), SettingsError,
                 "is not a valid Hub repository id", id="push-repo-id-dot-git"),
    pytest.param(lambda c: export.push_to_hub(c.run(adapter=True).path, "me/adapter", "hf_x", what="weights"),
                 SettingsError, "Choose adapter or merged", id="push-unknown-what"),
    pytest.param(lambda c: export.push_to_hub(c.run().path, "me/adapter", "hf_x"), RunError,
                 "no saved adapter yet", id="push-run-without-adapter"),
    pytest.param(lambda c: export.push_to_hub(c.run(adapter=True).path, "me/adapter", "hf_x"), HubUnavailableError,
                 "cannot be reached, so nothing was pushed", id="push-offline"),
    pytest.param(push_with_rejected_token, SettingsError, "rejected the token for me", id="push-token-rejected"),
]


@pytest.fixture()
def ctx(tmp_path, tiny_tokenizer, monkeypatch) -> Ctx:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return Ctx(tmp_path, tiny_tokenizer, monkeypatch)


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("roles, column, repair", [
    (("system", "assistant", "user", "assistant"), "messages", "leading_assistant"),
    (("user", "assistant", "assistant"), "messages", "repeated_role"),
    (("user", "user", "assistant"), "messages", "repeated_role"),
    (("user", "assistant", "user"), "messages", "trailing_user"),
    (("human", "human", "gpt"), "conversations", "repeated_role"),
])
def test_irregular_chats_are_repaired_not_refused(roles, column, repair):
    converted = convert_records(records_of(chat_rows(*roles, column=column)), "hub-chats")
    assert len(converted.examples) == 1 and converted.summary.repaired == {repair: 1}


@pytest.mark.parametrize("case, error, fragment", CASES)
def test_bad_input_is_one_typed_sentence(ctx, case, error, fragment):
    with pytest.raises(StudioError) as info:
        case(ctx)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert fragment in str(info.value)
    assert_one_sentence(str(info.value))
    assert "hf_rejected" not in str(info.value)


# ---- a job whose run folder disappears ----------------------------------------------------------------------------

@pytest.fixture()
def words_file(tmp_path) -> Path:
    return write_uppercase_rows(tmp_path / "words.jsonl", WORDS)


@pytest.fixture()
def thread_errors(monkeypatch) -> list:
    """Exceptions that escape any thread (a job thread must never let one out)."""
    caught: list = []
    monkeypatch.setattr(threading, "excepthook", caught.append)
    return caught


def tiny_job(words_file: Path, root: Path, tokenizer, data: dict | None = None, **train) -> TrainingJob:
    settings = apply_overrides(StudioSettings(), {
        "data": {"dataset": str(words_file), "template": "alpaca", "max_length": 64, **(data or {})},
        "train": {"max_steps": 4, "batch_size": 2, "threads": 1, **train},
    })

    def loader(model_settings, token=None):
        return LoadedModel(make_tiny_model(tokenizer), tokenizer, "tiny", "local", 0.0, False)

    return TrainingJob(settings, root, queue=JobQueue(), model_loader=loader)


def test_a_job_whose_run_folder_is_deleted_mid_run_fails_with_a_sentence(words_file, tmp_path, tiny_tokenizer,
                                                                          thread_errors):
    root = tmp_path / "runs"
    job = tiny_job(words_file, root, tiny_tokenizer)
    record = job._record

    def delete_after_step_2(r):
        record(r)
        if r["step"] == 2:
            shutil.rmtree(job.run_dir)

    job._record = delete_after_step_2
    job.start()
    assert job.join(timeout=60)
    assert job.status in ("failed", "stopped")
    assert "was deleted while the job was running" in job.error
    assert_one_sentence(job.error)
    assert not thread_errors
    assert not job.run_dir.exists() and runs.list_runs(root) == []  # nothing was written back into its place
    # The process carries on: the next job trains.
    following = tiny_job(words_file, root, tiny_tokenizer, max_steps=1)
    following.start()
    assert following.join(timeout=60) and following.status == "completed", following.error


def test_a_job_whose_run_folder_is_deleted_while_queued_fails_with_a_sentence(words_file, tmp_path, tiny_tokenizer,
                                                                              thread_errors):
    job = tiny_job(words_file, tmp_path / "runs", tiny_tokenizer)
    shutil.rmtree(job.run_dir)
    job.start()
    assert job.join(timeout=60) and job.status == "failed"
    assert_one_sentence(job.error)
    assert "deleted" in job.error and not thread_errors and not job.run_dir.exists()


def test_a_job_with_a_bad_custom_template_fails_with_the_template_sentence(words_file, tmp_path, tiny_tokenizer):
    job = tiny_job(words_file, tmp_path / "runs", tiny_tokenizer,
                   data={"template": "custom", "custom_template": "{question}"})
    job.start()
    assert job.join(timeout=60) and job.status == "failed"
    assert job.error.startswith("The custom template has an unknown field {question}")
    assert runs.read_run(tmp_path / "runs", job.run_id).error == job.error


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--set", "train.learnig_rate=1"], "Unknown setting train.learnig_rate."),
    (["train", "--preset", "../secrets"], "Preset names use lowercase letters"),
    (["compare", "../../etc"], "is not a valid run id."),
    (["export", "20260101-000000-abcdef"], "no longer exists"),
])
def test_the_cli_prints_one_error_line(argv, fragment, tmp_path, capsys):
    from studio.cli import main

    assert main([*argv, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err
    assert_one_sentence(err.removeprefix("error: ").strip())
