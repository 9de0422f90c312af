"""The embedded model's fp32 cache (studio.model.embedded)."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from studio.model import embedded
from studio.model.embedded import studio_home
from studio.model.loading import load_base_model
from studio.settings import EMBEDDED_MODEL, ModelSettings
from tests.tiny import save_tiny_model


def test_studio_home_follows_the_environment(home, monkeypatch):
    assert studio_home() == home
    monkeypatch.delenv("STUDIO_HOME")
    assert studio_home() == Path.home() / ".cache" / "instruction-tuning-studio"


def test_embedded_cache_is_built_once_atomically_and_reused(home, tiny_tokenizer, monkeypatch):
    calls = []

    def fake_build(out: Path, phase) -> None:
        phase("assemble")
        calls.append(out)
        assert not embedded.embedded_cache_dir().exists()  # written elsewhere, renamed at the end
        save_tiny_model(out, tiny_tokenizer)

    monkeypatch.setattr(embedded, "_build_embedded_copy", fake_build)
    threads = [threading.Thread(target=embedded.ensure_embedded_cache) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    loaded = load_base_model(ModelSettings(model=EMBEDDED_MODEL))
    assert loaded.source == "embedded" and loaded.from_cache
    assert loaded.tokenizer("Uppercase the word.")["input_ids"] == tiny_tokenizer("Uppercase the word.")["input_ids"]
    assert sorted(p.name for p in embedded.embedded_cache_dir().parent.iterdir() if not p.name.endswith(".lock")) == [
        embedded.EMBEDDED_CACHE_NAME]


def test_a_gguf_file_is_parsed_once_inside_the_block_and_readers_are_restored_after(tmp_path):
    import gguf

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.name", "tiny")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    original = gguf.GGUFReader
    with embedded.gguf_parsed_once():
        first, second = gguf.GGUFReader(str(path)), gguf.GGUFReader(path)
        assert first is second and bytes(first.fields["general.name"].parts[-1]) == b"tiny"
    assert gguf.GGUFReader is original and gguf.GGUFReader(str(path)) is not first
    with pytest.raises(RuntimeError), embedded.gguf_parsed_once():
        raise RuntimeError("a failed load")
    assert gguf.GGUFReader is original  # restored and released after an error too
    with embedded.gguf_parsed_once():
        pass


def test_a_build_in_another_process_holds_the_lock_and_is_seen(home):
    import subprocess
    import sys

    assert not embedded.embedded_build_running()  # no lock file yet: nobody ever built here
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom studio.model import embedded\nwith embedded._build_lock():\n"
         "    print('held', flush=True)\n    sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout.readline().strip() == "held"
        assert embedded.embedded_build_running()
        waited = threading.Event()

        def wait_for_the_build() -> None:
            with embedded._build_lock():
                waited.set()

        waiter = threading.Thread(target=wait_for_the_build)
        waiter.start()
        assert not waited.wait(0.5)  # one build at a time, across processes
    finally:
        holder.communicate("done\n", timeout=30)
    waiter.join(10)
    assert waited.is_set() and not embedded.embedded_build_running()
