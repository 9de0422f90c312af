"""Child processes of the bench (the app, a cold start): stopped the same way everywhere."""
from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate a child process, killing it when it has not ended within 30 s."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
