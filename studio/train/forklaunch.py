"""The launcher of a run on several CPU processes: `python -m studio.train.forklaunch ACCELERATE_FLAGS -- WORKER_ARGS`.

`accelerate launch` starts every rank as a fresh interpreter: the launcher imports torch and accelerate (about 3 s)
and then each rank imports torch, transformers, peft and TRL again (about 8 s of one core each). This launcher
imports the training stack (`studio.train.worker`) once and then makes accelerate's own DDP launch, the one `accelerate
launch --multi_gpu` makes: its flags parsed and checked by accelerate's parser, its environment from
`prepare_multi_gpu_env`, torch's elastic agent starting and watching the ranks; only the ranks are forked from this
process, already imported, instead of started anew, so the first loss point comes seconds sooner (`python -m
bench launch`).

Forking is safe here because nothing in this process has run a tensor op (no thread pool exists yet); each rank
sets its own thread count. On GPUs and with an accelerate config file the studio keeps `accelerate launch`
(`studio.train.launch.launch_command`): CUDA must not be touched before a fork, and a config file may name
DeepSpeed, whose launcher is its own.
"""
from __future__ import annotations

import signal
import sys
import uuid
from collections.abc import Callable

import studio.train.worker as worker  # the training stack, imported once for every rank

SEPARATOR = "--"


def run_rank(rank_main: Callable[[list[str]], int], *argv: str) -> None:
    """One rank: `rank_main(argv)` (the worker's `main`) with default signals, its failure an exit code the elastic
    agent sees."""
    # A forked rank inherits the agent's signal handlers, which turn SIGTERM into an exception: a rank the agent
    # ends (another rank died) would report that exception as the run's error. Signals end it as they end a rank
    # `accelerate launch` started.
    for name in ("SIGTERM", "SIGHUP", "SIGQUIT"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = rank_main(list(argv))
    if code:
        sys.exit(code)


def main(argv: list[str] | None = None, rank_main: Callable[[list[str]], int] = worker.main) -> int:
    """Launch `rank_main(WORKER_ARGS)` on every rank as `accelerate launch ACCELERATE_FLAGS` would; 0 when all ended
    normally, else the failing rank's error on stderr and 1 (128 + the signal when the launcher was signalled)."""
    import torch.distributed.run as distrib_run
    from accelerate.commands.launch import _filter_args, _validate_launch_command, launch_command_parser
    from accelerate.utils import patch_environment
    from accelerate.utils.launch import prepare_multi_gpu_env
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    argv = sys.argv[1:] if argv is None else argv
    split = argv.index(SEPARATOR)
    flags, rank_args = argv[:split], argv[split + 1:]
    args = launch_command_parser().parse_args([*flags, "-m", worker.__name__, *rank_args])
    args, _, _ = _validate_launch_command(args)  # what `accelerate launch` checks and fills in from its config
    env = prepare_multi_gpu_env(args)
    torchrun = _filter_args(args, distrib_run.get_args_parser(), [worker.__name__])  # as accelerate passes them on
    torchrun.start_method = "fork"
    if torchrun.standalone:  # accelerate found its port taken: torchrun's own fallback, as `torchrun.run` does it
        torchrun.rdzv_backend, torchrun.rdzv_endpoint, torchrun.rdzv_id = "c10d", "localhost:0", str(uuid.uuid4())
    config, _, _ = distrib_run.config_from_args(torchrun)

    def rank(*args: str) -> None:  # a named function: the agent logs its entry point's name
        run_rank(rank_main, *args)

    try:
        with patch_environment(**env):
            elastic_launch(config=config, entrypoint=rank)(*rank_args)
    except ChildFailedError as error:
        print(error, file=sys.stderr, flush=True)
        return 1
    except SignalException as error:  # the agent has already ended the ranks
        return 128 + int(error.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
