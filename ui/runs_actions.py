"""Runs tab, after the first run: Resume an interrupted or stopped run, Train a completed run more.

Both start a training job for the visitor and switch to the Train tab, which then shows it live: a resumed run
continues in its own folder with its loss chart picking up where it stopped; "Train more" is a new run that
starts from the completed run's adapter and optimizer state and records its parent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.errors import RunError
from studio.runs import read_run
from studio.train.continuation import continue_settings
from studio.train.launch import check_machine
from ui.context import Context
from ui.errors import guarded
from ui.state import SessionState, owner_of
from ui.train_tab import job_view


@dataclass
class RunActions:
    """The Resume / Train more components."""

    resume: Any
    amount: Any
    unit: Any
    more: Any


def create_run_actions() -> RunActions:
    """Lay out the row of Resume and Train more (inside the Runs tab)."""
    with gr.Row(equal_height=True):
        resume = gr.Button("Resume (interrupted, stopped or failed run)", size="sm", scale=2)
        amount = gr.Number(1, label="Train more by", minimum=1, maximum=100_000, precision=0, scale=1,
                           info="How many more epochs or steps.")
        unit = gr.Radio(["epochs", "steps"], value="epochs", label="Unit", scale=1)
        more = gr.Button("Train more (a new run from this one)", size="sm", scale=2)
    return RunActions(resume, amount, unit, more)


def more_overrides(amount: float, unit: str) -> dict[str, dict[str, Any]]:
    """The train.* overrides for "N more epochs" or "N more steps"."""
    if amount is None or amount < 1:
        raise RunError("Train more by at least 1 epoch or step.")
    return {"train": {"epochs": float(amount), "max_steps": 0}} if unit == "epochs" else \
        {"train": {"max_steps": int(amount)}}


def wire_run_actions(ctx: Context, actions: RunActions, run: Any) -> None:
    """Connect Resume and Train more; both switch to the Train tab with the new job's live view."""
    state, services = ctx.state, ctx.services
    train = ctx.train
    view = [train.progress, train.plot, train.log, train.result, train.download, train.status, train.timer,
            train.shown]

    def start(state: SessionState, request: gr.Request, settings: Any, **origin: str) -> tuple:
        owner = owner_of(state, request)
        services.jobs.check_free(owner)  # before the job touches any run folder
        # A run copied from a bigger machine opens here, but cannot launch its processes: one sentence, nothing run.
        check_machine((settings or read_run(services.runs_root, origin["resume_run"]).folder.read_settings()).train)
        job = services.new_job(settings, owner=owner, **origin)
        services.jobs.add(owner, job)
        job.start()
        state.run_id = job.run_id
        return (state, gr.Tabs(selected="train"), *job_view(job, 0.0, False))

    @guarded
    def resume(state: SessionState, run_id: str, request: gr.Request) -> tuple:
        """Finish an interrupted, stopped or failed run of yours from its last complete checkpoint."""
        if not run_id:
            raise RunError("Choose a run first.")
        return start(state, request, None, resume_run=run_id)

    @guarded
    def more(state: SessionState, run_id: str, amount: float, unit: str, request: gr.Request) -> tuple:
        """Train a completed run of yours N more epochs or steps, as a new run from its adapter and optimizer."""
        if not run_id:
            raise RunError("Choose a run first.")
        parent = read_run(services.runs_root, run_id).folder.read_settings()
        settings = continue_settings(parent, more_overrides(amount, unit))
        return start(state, request, settings, continue_run=run_id)

    outputs = [state, ctx.tabs, *view]
    actions.resume.click(resume, [state, run], outputs, api_name="resume_run")
    actions.more.click(more, [state, run, actions.amount, actions.unit], outputs, api_name="train_more")
