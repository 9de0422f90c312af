"""The Compare tab's "Judge the answers" panel: an LLM judge picks the better answer, tuned vs base (or vs the
prompt-only baseline), in both orders.

The handlers turn the boxes into a `JudgeSpec` and call `studio.evaluate.judge.judge_run` on the chosen run's saved
comparison, then rewrite the run's report, whose headline now carries the judge; the sentence comes from the
scorecard, as everywhere. The key box is a password field whose value goes
into the requests of this one click and nowhere else. Stop reaches the judge through the visitor's own stop flag
(`ui.services.StopFlags`), checked between two pairs.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from studio.errors import RunError
from studio.evaluate.comparison import load_comparison
from studio.evaluate.judge import judge_run, stopped_note
from studio.evaluate.judge_backends import JudgeSpec, make_judge
from studio.evaluate.judge_record import JudgeResult, JudgeStopped, load_judge
from studio.model.threads import on_own_thread
from studio.publish.report import write_report
from studio.publish.scorecard import JUDGE_MIN_AGREEMENT, judge_sentence
from studio.runs import RunFolder, read_run
from ui.context import Context
from ui.errors import guarded
from ui.state import SessionState, owner_of
from ui.stops import wire_stop

PROGRESS = gr.Progress()
BACKENDS = [("An OpenAI-compatible endpoint (llama-server, Ollama, vLLM, a hosted API)", "endpoint"),
            ("A chat model run here (a Hub id or a local folder)", "transformers"),
            ("Hugging Face Inference Providers (your Hugging Face token or sign-in)", "providers")]
EXPLAIN = ("Another LLM reads each held-out instruction, its reference answer and two answers, the tuned model's and "
           "the base model's (or the prompt-only baseline's), and says which is better or a tie. Every pair is asked "
           "twice, the answers swapped, so a judge that favours the first answer cancels out; a judge that disagrees "
           "with itself too often is reported as too weak to trust. The prompt and every reply are saved in the run "
           "folder, and the win rate joins Compare's headline and the report.")
OPPONENTS = [("base model", "base"), ("prompt-only baseline", "baseline")]
TABLE = ["#", "Instruction", "Base shown first", "Tuned shown first"]
_WHO = {"tuned": "tuned", "tie": "tie", None: "unreadable"}


@dataclass
class JudgePanel:
    """The panel's components."""

    backend: Any
    opponent: Any
    endpoint: Any
    model: Any
    key: Any
    local_model: Any
    judge: Any
    stop: Any
    result: Any
    table: Any


def create_judge_panel(ctx: Context) -> JudgePanel:
    """Lay out the panel (inside the Compare tab)."""
    with gr.Accordion("Judge the answers", open=False):
        gr.Markdown(EXPLAIN)
        backend = gr.Radio(BACKENDS, value="endpoint", label="Judge")
        opponent = gr.Radio(OPPONENTS, value="base", label="Tuned vs",
                            info="the prompt-only baseline: the base model with training examples before each prompt "
                                 "(when Compare ran it)")
        with gr.Row():
            endpoint = gr.Textbox("", label="Endpoint URL", placeholder="http://127.0.0.1:8080", scale=3)
            model = gr.Textbox("", label="Model name (endpoint or provider)", scale=2,
                               placeholder="e.g. qwen2.5:7b-instruct; empty for llama-server")
            key = gr.Textbox("", label="API key or token (used for this judging only, never saved)", type="password",
                             scale=2)
        local_model = gr.Textbox("", label="Chat model run here (Hub id or local folder)",
                                 placeholder="e.g. Qwen/Qwen2.5-0.5B-Instruct")
        with gr.Row():
            judge = gr.Button("Judge the answers", variant="primary", scale=4)
            stop = gr.Button("Stop (keeps the pairs judged)", variant="stop", scale=1)
        result = gr.HTML()
        table = gr.Dataframe(headers=TABLE, label="Every verdict, read from the tuned model's side", wrap=True,
                             interactive=False, max_height=360)
    return JudgePanel(backend, opponent, endpoint, model, key, local_model, judge, stop, result, table)


def judge_html(result: JudgeResult, where: str = "") -> str:
    """The scorecard's sentence, the counts, and who judged."""
    s = result.summary()
    counts = (f"{s['pairs']} pairs scored of {s['judged']} judged: tuned won {s['wins']}, {s['ties']} ties, "
              f"{s['losses']} lost; {s['unreadable']} unreadable replies.")
    notes = [stopped_note(result), counts, f"Judge: {result.judge}.", where]
    body = "".join(f"<p>{html.escape(n)}</p>" for n in notes if n)
    return f"<p><strong>{html.escape(judge_sentence(s))}</strong></p>{body}"


def verdict_frame(result: JudgeResult, instructions: list[str]) -> pd.DataFrame:
    """One row per judged pair: its instruction and each order's winner (tuned / base or baseline / tie /
    unreadable)."""
    who = {**_WHO, "opponent": result.opponent}
    pairs: dict[int, dict[str, str]] = {}
    for v in result.verdicts:
        pairs.setdefault(v.index, {})[v.order] = who[v.winner]
    rows = [[i + 1, instructions[i] if i < len(instructions) else "", p.get("opponent_first", ""),
             p.get("tuned_first", "")] for i, p in pairs.items()]
    return pd.DataFrame(rows, columns=[*TABLE[:2], f"{result.opponent.capitalize()} shown first", TABLE[3]])


class JudgeHandlers:
    """Boxes -> `JudgeSpec` -> `judge_run`, answered as {component: value}."""

    def __init__(self, ctx: Context, panel: JudgePanel) -> None:
        self.ctx, self.panel, self.services = ctx, panel, ctx.services

    def view(self, result: JudgeResult | None, run_dir: Path | None = None) -> dict:
        """The result HTML and the verdict table (empty without a judging)."""
        p = self.panel
        if result is None or run_dir is None:
            return {p.result: "", p.table: pd.DataFrame(columns=TABLE)}
        cmp = load_comparison(run_dir)
        instructions = [row.instruction for row in cmp.rows] if cmp is not None else []
        where = f"The prompt and every reply are saved in the run folder's {RunFolder(run_dir).judge_file.name}."
        return {p.result: judge_html(result, where), p.table: verdict_frame(result, instructions)}

    @guarded
    def judge(self, state: SessionState, run_id: str | None = None, backend: str = "endpoint", endpoint: str = "",
              model: str = "", api_key: str = "", local_model: str = "", opponent: str = "base",
              token: str | None = None, request: gr.Request = None, oauth_token: gr.OAuthToken | None = None,
              progress: gr.Progress = PROGRESS) -> dict:
        """Judge the run's saved answers pairwise in both orders (tuned vs `opponent`: 'base' or 'baseline'); the
        win rate, its interval and agreement; the run's report is rewritten with it."""
        run_id = run_id or state.run_id
        if not run_id:
            raise RunError("Choose a compared run first (compare one above).")
        info = read_run(self.services.runs_root, run_id)
        name = local_model if backend == "transformers" else model
        spec = JudgeSpec(backend=backend or "endpoint", model=name or "", endpoint=endpoint or "")
        secret = (api_key or "").strip() or None
        if secret is None and backend != "endpoint":  # a Hub judge or a provider: the visitor's own token
            secret = (token or "").strip() or (oauth_token.token if oauth_token is not None else None)
        stop = self.services.stops.start(owner_of(state, request), "judge")
        progress(0, desc="Loading the judge" if backend == "transformers" else "Asking the judge")
        judge = on_own_thread(make_judge, spec, secret, model_loader=self.services.model_loader)
        try:
            result = on_own_thread(judge_run, info.path, judge, JUDGE_MIN_AGREEMENT, opponent or "base",
                                   should_stop=stop.is_set,
                                   progress=lambda done, total: progress((done, total),
                                                                         desc="Judging pairs, both orders",
                                                                         unit="pairs"))
        except JudgeStopped as stopped:
            gr.Info(str(stopped))
            return gr.skip()
        if result.partial:
            gr.Info(stopped_note(result))
        write_report(info.path)  # the report's headline carries the judge from now on
        return self.view(result, info.path)

    @guarded
    def saved(self, run_id: str | None = None) -> dict:
        """The run's saved judging, if it has one."""
        if not run_id:
            return self.view(None)
        info = read_run(self.services.runs_root, run_id)
        return self.view(load_judge(info.path), info.path)


def wire_judge_panel(ctx: Context, panel: JudgePanel, run: Any) -> Any:
    """Connect Judge (with progress), Stop, and the saved judging of the run chosen in Compare; returns the Judge
    event, so Compare can refresh its headline after it."""
    on = JudgeHandlers(ctx, panel)
    view = [panel.result, panel.table]
    inputs = [ctx.state, run, panel.backend, panel.endpoint, panel.model, panel.key, panel.local_model,
              panel.opponent, ctx.token]
    # Its own queue: an endpoint judge waits on the network, not on the shared model Compare uses.
    judged = panel.judge.click(on.judge, inputs, view, api_name="judge", concurrency_id="judge", concurrency_limit=1,
                               show_progress_on=panel.result)
    wire_stop(ctx, panel.stop, "judge", "the judge after the current pair", "stop_judge")
    run.change(on.saved, run, view, api_name="saved_judge")
    return judged
