"""deploy/llm_cpu.py profiles: the Gemma default as before; chunked GGUFs joined in order, digest checked."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from deploy import llm_cpu


def test_default_profile_keeps_the_existing_setup_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Existing caches carry a marker written before profiles existed; it must still count as current.
    monkeypatch.setenv("EHRSUM_CACHE", str(tmp_path))
    assert llm_cpu._marker_payload(llm_cpu.DEFAULT_PROFILE) == {
        "setup_version": 1,
        "packages": list(llm_cpu.PACKAGES),
        "venv": str(tmp_path / "vllm-venv"),
        "model_dir": str(tmp_path / "models" / "gemma3-270m"),
    }
    assert llm_cpu.marker_path() == tmp_path / "llm-cpu-setup.json"
    assert llm_cpu.model_dir() == llm_cpu.model_dir("gemma3-270m")
    cmd, _ = llm_cpu.server_command(8000)
    assert cmd[cmd.index("--served-model-name") + 1] == "gemma3-270m"
    assert cmd[cmd.index("--max-model-len") + 1] == "4096"
    # Gemma 3 is hybrid: sliding-window cache checkpoints, so the kinds of a job reuse the timeline.
    assert cmd[cmd.index("--prefix-cache-retention-interval") + 1] == "256"


def test_instruct_profile_serves_its_own_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHRSUM_CACHE", str(tmp_path))
    cmd, _ = llm_cpu.server_command(8000, profile="qwen-instruct", max_model_len=8192)
    assert cmd[cmd.index("--model") + 1] == str(tmp_path / "models" / "qwen2.5-coder-1.5b-instruct")
    assert cmd[cmd.index("--served-model-name") + 1] == "qwen2.5-coder-1.5b-instruct"
    assert cmd[cmd.index("--max-model-len") + 1] == "8192"
    assert "--prefix-cache-retention-interval" not in cmd  # vLLM refuses it for a model without SWA
    assert llm_cpu.marker_path("qwen-instruct") != llm_cpu.marker_path()
    with pytest.raises(llm_cpu.SetupError, match="unknown model profile"):
        llm_cpu.model_dir("no-such-model")


def _chunked(tmp_path: Path, parts: int) -> tuple[llm_cpu.Profile, bytes]:
    """A profile over fake chunk packages part1..partN laid out as pip --target installs them."""
    whole = b""
    for i in range(1, parts + 1):
        data = tmp_path / "packages" / f"fake_model_part{i}" / "data"
        data.mkdir(parents=True)
        chunk = f"<chunk {i}>".encode()
        (data / f"part{i:02d}.bin").write_bytes(chunk)
        whole += chunk
    profile = dataclasses.replace(
        llm_cpu.PROFILES["qwen-instruct"],
        chunk_packages=tuple(f"fake-model-part{i}==1.0" for i in range(1, parts + 1)),
        gguf_sha256=hashlib.sha256(whole).hexdigest(),
    )
    return profile, whole


def test_chunks_join_in_package_order_and_the_digest_is_checked(tmp_path: Path) -> None:
    profile, whole = _chunked(tmp_path, 11)  # part10 and part11 must follow part9, not part1
    assert llm_cpu._assemble(profile, tmp_path).read_bytes() == whole

    other = tmp_path / "other"
    tampered, _ = _chunked(other, 3)
    with pytest.raises(RuntimeError, match="sha256"):
        llm_cpu._assemble(dataclasses.replace(tampered, gguf_sha256="0" * 64), other)
