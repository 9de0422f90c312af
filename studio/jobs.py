"""Training jobs: one thread per job, and a process-wide queue so only one job trains at a time on 2 cores.

A job may carry after-training stages (the demo's compare + report): `studio.stages` runs them in the job's own
thread once the adapter is saved, while the job reads "evaluating"; then it ends completed, stopped or failed.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch

from studio import runs
from studio.errors import RunError
from studio.jobqueue import JobQueue, default_queue
from studio.model.threads import thread_policy, use_threads
from studio.publish.reproduce import write_repro_bundle
from studio.runs import RunFolder
from studio.settings import StudioSettings
from studio.stages import AfterStage, run_stages, skipped_message
from studio.train import continuation, steps
from studio.train import launch as launched
from studio.train.callbacks import MetricsCallback, StopBeforeFirstStep
from studio.train.config import estimate_total_steps
from studio.train.early_stopping import check_early_stopping
from studio.train.progress import TrainingProgress
from studio.train.steps import ModelLoader


class TrainingJob:
    """One training run in its own thread: queue -> prepare data -> load model -> tokenize -> train -> save.

    With `resume_run`, the run's own settings.json and folder are reused and training continues from its last
    checkpoint (the `settings` argument is then ignored). With `continue_run` ("Train more"), a new run starts from
    that completed run's adapter and optimizer state on its saved splits, with `settings` (see
    `continuation.continue_settings`), and records its parent. The token is used for downloads only, never stored.
    `model_loader(model_settings, token=...) -> LoadedModel` replaces `load_base_model` (tests, UI injection);
    `queue` replaces the process-wide queue. `after` are stages run once training completed (`studio.stages`);
    `kind` names what the job is for ("train", or "demo" for the one-click before/after).
    """

    def __init__(
        self, settings: StudioSettings, root: Path, owner: str = "", token: str | None = None,
        resume_run: str | None = None, queue: JobQueue | None = None, model_loader: ModelLoader | None = None,
        continue_run: str | None = None, after: Sequence[AfterStage] = (), kind: str = "train",
    ) -> None:
        self.root, self.owner, self._token = Path(root), owner, token
        self.after, self.kind = tuple(after), kind
        self.queue = queue or default_queue()
        self._model_loader = model_loader
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._track = TrainingProgress()  # history, log and progress: what watchers poll
        self._status, self.message, self.error = "queued", "", ""
        self.model = self.tokenizer = self.template = self.splits = None
        self.comparison: Any = None  # the Comparison, once a compare stage has one (partial when stopped)
        self._stage = "data"
        self._started: float | None = None
        self._ended: float | None = None
        self._resume_from: Path | None = None
        self._parent: tuple[Path, Path] | None = None  # Train more: (parent run folder, its last checkpoint)
        self.stop_reason = ""  # why training ended early (early stopping), one sentence
        self._recorded_threads: int | None = None
        if resume_run:
            info, self.settings, self._resume_from = steps.open_for_resume(self.root, resume_run, owner)
            self._track = TrainingProgress(info.folder.read_metrics())
            self._recorded_threads = info.threads or None
            self.log(f"Resuming from {self._resume_from.name}, with the run's own settings and data.")
        else:
            check_early_stopping(settings)
            self.settings, parent = settings, {}
            if continue_run:
                info, checkpoint = continuation.open_for_continue(self.root, continue_run, owner)
                self._parent = (info.path, checkpoint)
                parent = continuation.parent_record(info, checkpoint)
                self.log(f"Training run {info.run_id} more from its {checkpoint.name} (adapter and optimizer state).")
            info = runs.create_run(self.root, settings, owner, **parent)
        self.run_dir, self.run_id = info.path, info.run_id
        self.folder = RunFolder(self.run_dir)

    # ---- public API -------------------------------------------------------------------------------------------
    @property
    def status(self) -> str:
        """queued, preparing, training, saving, evaluating (after-training stages), completed, stopped or failed."""
        return self._status

    @property
    def stage(self) -> str:
        """data, model, train, the running after-training stage's name, then results (an ended job that kept no
        comparison and did not complete stays at the stage it ended in)."""
        return self._stage

    def start(self) -> None:
        """Join the queue and run the pipeline in a background thread."""
        if self._thread is not None or self._status in runs.FINISHED:
            raise RunError("This job has already been started.")
        self._started = time.monotonic()
        self.queue.enqueue(self)
        self._thread = threading.Thread(target=self._run, name=f"train-{self.run_id}", daemon=True)
        self._thread.start()

    def stop(self, owner: str | None = None) -> None:
        """Ask the job to stop at the next safe point; `owner` (when given) must be the job's owner."""
        if owner is not None and self.owner and owner != self.owner:
            raise RunError("This run belongs to another session, so it cannot be stopped from here.")
        if self._stop.is_set() or self._status in runs.FINISHED:
            return
        self._stop.set()
        self.log("Stop requested.")
        if self._thread is None:  # never started: nothing will run, so leave the line and finish here
            self.queue.release(self)
            self._finish(0)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True once the job has finished (or was never started)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def history(self) -> list[dict[str, Any]]:
        """A copy of the metric records so far (one per logged step or evaluation)."""
        return self._track.history()

    def logs(self) -> list[str]:
        """Short human-readable log lines so far."""
        return self._track.logs()

    def log(self, line: str) -> None:
        """Add a line to the job's log (after-training stages say what they do here)."""
        self._track.log(line)

    def progress(self) -> dict[str, Any]:
        """step, total_steps, epoch, fraction, tokens_per_second, eta_seconds and elapsed (training seconds).

        A job with after-training stages adds its `stage`, `answering` (which model, done, total: how far a stage
        is) and `demo_seconds` (since start: waiting, training and the stages; final once it has ended).
        """
        p = self._track.view()
        if self.after:
            seconds = (self._ended or time.monotonic()) - self._started if self._started is not None else 0.0
            p.update(stage=self._stage, answering=self._track.answering(), demo_seconds=round(seconds, 1))
        return p

    # ---- the pipeline (runs in the thread) ---------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if not self.queue.wait_turn(self, self._stop):
                self._finish(0)
                return
            try:
                self._pipeline()
            finally:
                self.queue.release(self)  # the stages after training do not hold the next job back
        except Exception as exc:  # noqa: BLE001 - a failed run must never take the server down
            self._fail(exc)
        if self._status == "evaluating":
            self._after_training()

    def _pipeline(self) -> None:
        self._set_status("preparing")
        # Resume and Train more reuse the rows saved at the start (an uploaded file may be gone by now).
        saved = self._parent[0] if self._parent else self.run_dir if self._resume_from else None
        self.splits = steps.run_splits(self.settings, self._token, self.run_dir, saved, self.log)
        self._stage = "model"
        if self._stop.is_set():
            return self._finish(0)
        if self.settings.train.num_processes > 1:
            return self._launched()
        loaded = steps.load_model(self.settings, self._token, self._model_loader, self.root, self.log)
        if self._stop.is_set():
            return self._finish(0)
        self.template, train_ds, eval_ds = steps.tokenize(loaded.tokenizer, self.splits, self.settings, self.log)
        trainer = self._train(loaded, train_ds, eval_ds)
        self._set_status("saving")
        self.model, self.tokenizer = trainer.model, loaded.tokenizer
        self.model.eval()
        self._finish(trainer.state.global_step, trainer)

    def _train(self, loaded: Any, train_ds: Any, eval_ds: Any) -> Any:
        last = (self._track.history() or [{}])[-1]  # a resumed run goes on from its last record
        callback = MetricsCallback(
            self._record, self._stop, skip_until_step=int(last.get("step") or 0),
            elapsed_offset=float(last.get("elapsed") or 0.0), on_begin=self._on_train_begin,
        )
        estimate = estimate_total_steps(len(train_ds), self.settings)
        self._track.update(total_steps=estimate, step=callback.skip_until_step, first_step=callback.skip_until_step,
                           elapsed=callback.elapsed_offset, first_elapsed=callback.elapsed_offset)
        parent_checkpoint = self._parent[1] if self._parent else None
        model = continuation.with_parent_adapter(loaded.model, parent_checkpoint) if parent_checkpoint else loaded.model
        more = steps.extra_callbacks(self.settings, self.folder, self._stopped_early, parent_checkpoint)
        trainer = steps.build_trainer(model, loaded.tokenizer, self.settings, self.folder.checkpoints_dir,
                                      train_ds, eval_ds, [callback, *more])
        callback.trainer = trainer
        policy = self._record_threads_and_bundle(trainer, loaded.tokenizer)
        self._stage = "train"
        self._set_status("training")
        self.log("Training on the GPU" if torch.cuda.is_available() else f"Training on {policy.describe()}")
        with use_threads(policy):
            try:
                resume = str(self._resume_from) if self._resume_from else None
                trainer.train(resume_from_checkpoint=resume)
            except StopBeforeFirstStep:
                pass
            finally:
                callback.trainer = None  # break the trainer <-> callback cycle so the optimizer state is freed
            if eval_ds is not None and self.settings.train.eval_steps == 0 and not self._stop.is_set():
                trainer.evaluate()
        return trainer

    def _launched(self) -> None:
        """Train in a child process group (`studio.train.launch`), then hold the adapter in memory as a run trained
        here would (Compare, the demo's stages and the command line use `job.model`)."""
        launch = launched.prepare(self.folder, self.settings, self._recorded_threads, self._model_loader, self._token,
                                  self._resume_from, self._parent[1] if self._parent else None)
        write_repro_bundle(self.run_dir)  # from the settings: its launch.sh with as many processes repeats the run
        self._stage = "train"
        self._set_status("training")
        self.log(launch.describe())
        outcome = launch.train(self._stop, partial(self._record, append=False), self._on_train_begin)
        if outcome.step == 0:
            return self._finish(0)
        self.stop_reason = outcome.stop_reason
        self._set_status("saving")
        loaded = steps.load_model(self.settings, self._token, self._model_loader, self.root, self.log)
        self.template, self.model, self.tokenizer = launched.adapter_model(loaded, self.settings, self.folder)
        self._close_training(outcome.step, outcome.total_steps, self.folder.adapter_dir)

    def _record_threads_and_bundle(self, trainer: Any, tokenizer: Any) -> Any:
        """Fix the run's thread policy in run.json, then write the reproducibility bundle (which copies it)."""
        # One thread count from the first step to the last (a resumed run keeps the one it started with).
        policy = thread_policy(self.settings.train, self._recorded_threads)
        runs.update_run(self.run_dir, threads=policy.threads, thread_policy=policy.name)
        # The bundle reads its TRL config off the objects this run trains with, so the two cannot drift.
        write_repro_bundle(self.run_dir, trainer.args, trainer.model.peft_config["default"], tokenizer)
        return policy

    def _stopped_early(self, reason: str) -> None:
        self.stop_reason = reason
        self.log(reason)

    def _on_train_begin(self, max_steps: int) -> None:
        self._track.update(total_steps=max_steps)
        self.log(f"Training {max_steps} steps")

    def _record(self, record: dict[str, Any], append: bool = True) -> None:
        """Metrics sink: keep the record (progress and log follow), append it to metrics.jsonl (not when rank 0 of
        launched processes wrote it there) and run.json's step."""
        self._track.add(record)
        if append:
            self.folder.append_metric(record)
        if record.get("loss") is not None:
            runs.update_run(self.run_dir, step=record["step"], total_steps=self._track.value("total_steps"))

    # ---- endings -----------------------------------------------------------------------------------------------
    def _finish(self, step: int, trainer: Any = None) -> None:
        """Save what exists and end as completed or stopped, with a plain message of what was saved where."""
        if step == 0 or trainer is None:
            self.message = steps.outcome_message(0, 0, stopped=True, adapter=None)
            return self._end("stopped", step=0)
        runs.read_run(self.root, self.run_id)  # RunError if the folder was deleted: do not write into its place
        adapter = steps.save_adapter(trainer.model, self.tokenizer, self.run_dir)
        self._close_training(step, trainer.state.max_steps, adapter)

    def _close_training(self, step: int, total: int, adapter: Path) -> None:
        """End training completed, or stopped when a stop came before the last step, saying where the adapter is."""
        stopped = self._stop.is_set() and step < total
        self.message = steps.outcome_message(step, total, stopped, adapter)
        if self.stop_reason and not stopped:
            self.message = f"{self.stop_reason} {self.message}"
        self._end("stopped" if stopped else "completed", step=step, total_steps=total,
                  final_loss=self._track.last("loss"), train_seconds=self._track.value("elapsed"),
                  stop_reason=self.stop_reason)

    def _fail(self, exc: BaseException) -> None:
        if not self.folder.exists():
            exc = RunError(f"Run folder {self.run_id} was deleted while the job was running, "
                           "so nothing more was saved.")
        self.error = steps.failure_message(exc, self.settings)
        if self._token:  # an exception may quote the request it failed on, token included
            self.error = self.error.replace(self._token, "***")
        self.log(f"Failed: {self.error}")
        self._end("failed", error=self.error)

    def _end(self, status: str, **fields: Any) -> None:
        """Record how training ended; the job ends here too unless its after-training stages are still to run."""
        if status == "stopped" and self.after:  # they never will: say so in the closing message
            self.message = skipped_message(self.message, self.after)
        if self.message:
            self.log(self.message)
        self._write_run(status=status, message=self.message, **fields)
        if status == "completed" and self.after:
            self._status = "evaluating"  # never "completed" in between: watchers would read half a story
        else:
            self._close(status)

    def _after_training(self) -> None:
        """Run the after-training stages; their end is the job's (run.json keeps training's outcome)."""
        end = run_stages(self, self.after, self._enter_stage, self._track.answered, self._stop.is_set)
        self.message, self.error = end.message or self.message, end.error
        self.log(end.message or f"Failed: {end.error}")
        self._close(end.status)

    def _enter_stage(self, name: str) -> None:
        self._stage = name

    def _close(self, status: str) -> None:
        self._ended = time.monotonic()
        if status == "completed" or self.comparison is not None:
            self._stage = "results"
        self._status = status  # last: watchers that see a final status see its message too

    def _set_status(self, status: str, **fields: Any) -> None:
        self._status = status
        self._write_run(status=status, **fields)

    def _write_run(self, **fields: Any) -> None:
        try:
            runs.update_run(self.run_dir, **fields)
        except RunError:
            if fields.get("status") not in runs.FINISHED:
                raise
            # The folder was deleted underneath the job: it still ends (in memory) rather than crash its thread.
