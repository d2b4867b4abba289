"""The one CPU vLLM of a test run: Gemma 3 270M with the test LoRA adapters, started by deploy/test.sh so
every pytest session of the run (and the model-variant tests) shares one server.

`python -m tests.support.shared_llm PORT` makes the adapters (cached by rank and seed) and execs the server.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from deploy import llm_cpu

# Served name -> (rank, seed): random, non-zero peft adapters, so an adapter's answer differs from the base.
ADAPTERS = {"triage-notes": (8, 1), "cardio-notes": (16, 2)}


def adapters() -> dict[str, Path]:
    """The test adapters, made once per cache (about 40 s each) and reused."""
    root = llm_cpu.cache_dir() / "test-lora"
    made = {}
    for name, (rank, seed) in ADAPTERS.items():
        folder = root / f"{name}-r{rank}-s{seed}"
        if not (folder / "adapter_model.safetensors").is_file():
            llm_cpu.make_lora(folder, rank=rank, seed=seed)
        made[name] = folder
    return made


def main(argv: list[str]) -> int:
    """Set up the model and adapters, then exec the server on the port given."""
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m tests.support.shared_llm PORT", file=sys.stderr)
        return 2
    llm_cpu.ensure_setup()
    command, env = llm_cpu.server_command(int(argv[0]), "127.0.0.1", lora=adapters())
    sys.stdout.flush()
    os.execve(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
