"""The models the service is sized for: what each can take (images), its context and how vLLM serves it.

One setting (EHRSUM_LLM_PROFILE) names a profile; the Helm presets under
helm/ehr-summarizer/examples/profiles/ render exactly `vllm_args()` (tests/helm checks both agree and that
vLLM's own parser accepts them). Memory and throughput are estimates from the weights' size and the GPU's
memory bandwidth, not measurements (docs/operations.md, "Model profiles").
"""

from __future__ import annotations

from dataclasses import dataclass

VLLM_VERSION = "0.32.0"  # the pinned server; re-run bench/golden.py on every upgrade (bench/gpu.md)
# MedGemma wraps its reasoning in these tokens when thinking is on; the span precedes the answer.
THINKING_START = "<unused94>"
THINKING_END = "<unused95>"


@dataclass(frozen=True)
class ModelProfile:
    """One way to serve a model: the checkpoint, its limits, the GPU it needs and vLLM's arguments."""

    name: str
    model_id: str
    served_name: str
    context_tokens: int
    multimodal: bool
    gpu: str
    weights_gb: float
    throughput_estimate: str
    dtype: str = "bfloat16"  # Gemma 3 overflows in float16: never fp16
    quantization: str | None = None
    kv_cache_dtype: str = "auto"
    gpu_memory_utilization: float = 0.9
    local_dir: str | None = None  # a checkpoint the hospital produces itself (under the weights volume)
    image_tokens: int = 256  # prompt tokens one image takes (Gemma 3's vision encoder: 256 per image)

    def vllm_args(self, weights_root: str = "/models") -> list[str]:
        """The `vllm serve` arguments of this profile (model first), as the chart renders them."""
        model = f"{weights_root.rstrip('/')}/{self.local_dir}" if self.local_dir else self.model_id
        args = [
            model,
            "--served-model-name",
            self.served_name,
            "--max-model-len",
            str(self.context_tokens),
            "--gpu-memory-utilization",
            str(self.gpu_memory_utilization),
            "--dtype",
            self.dtype,
        ]
        if self.quantization:
            args += ["--quantization", self.quantization]
        if self.kv_cache_dtype != "auto":
            args += ["--kv-cache-dtype", self.kv_cache_dtype]
        return args


PROFILES: dict[str, ModelProfile] = {
    p.name: p
    for p in (
        ModelProfile(
            name="medgemma-27b",
            model_id="google/medgemma-27b-it",
            served_name="medgemma-27b",
            context_tokens=32768,
            multimodal=True,
            gpu="1x 80 GB (H100, A100 80 GB) or H200",
            weights_gb=54.0,
            throughput_estimate="~35-40 tok/s per request, several hundred batched (H100)",
        ),
        ModelProfile(
            name="medgemma-27b-fp8",
            model_id="google/medgemma-27b-it",
            served_name="medgemma-27b",
            context_tokens=32768,
            multimodal=True,
            gpu="1x 48 GB (L40S) or 80 GB; FP8 compute needs Ada or Hopper",
            weights_gb=28.0,
            throughput_estimate="~55-65 tok/s per request (H100), ~20 tok/s (L40S)",
            quantization="fp8",
            kv_cache_dtype="fp8",
        ),
        ModelProfile(
            name="medgemma-27b-w4a16",
            model_id="google/medgemma-27b-it",
            served_name="medgemma-27b",
            context_tokens=16384,
            multimodal=True,
            gpu="1x 24 GB at 16k context, or 1x 48 GB",
            weights_gb=17.0,
            throughput_estimate="~30 tok/s per request (L40S), ~10 tok/s (L4)",
            # No published AWQ/GPTQ MedGemma was found: quantize google/medgemma-27b-it with llm-compressor
            # (GPTQ W4A16, compressed-tensors) into this folder; vLLM reads the scheme from its config.
            local_dir="medgemma-27b-it-w4a16",
            gpu_memory_utilization=0.92,
        ),
        ModelProfile(
            name="medgemma-4b",
            model_id="google/medgemma-4b-it",
            served_name="medgemma-4b",
            context_tokens=32768,
            multimodal=True,
            gpu="1x 24 GB (L4, A10, RTX 4090)",
            weights_gb=8.6,
            throughput_estimate="~20-25 tok/s per request, a few hundred batched (L4)",
        ),
        # The CPU stand-in of tests and the demo (deploy/llm_cpu.py): Gemma 3 270M, text only.
        ModelProfile(
            name="cpu-stand-in",
            model_id="gemma3-270m",
            served_name="gemma3-270m",
            context_tokens=4096,
            multimodal=False,
            gpu="none (2 CPU cores)",
            weights_gb=0.5,
            throughput_estimate="~38 tok/s on 2 cores (measured, /work/shared/LLM.md)",
        ),
    )
}
GPU_PROFILES = tuple(name for name in PROFILES if name != "cpu-stand-in")


def get_profile(name: str) -> ModelProfile:
    """The profile of that name; ValueError lists the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown model profile {name!r} (known: {', '.join(PROFILES)})") from None


def strip_thinking(text: str) -> str:
    """The answer without MedGemma's thinking span (an unclosed span: everything after it is thought)."""
    while (start := text.find(THINKING_START)) != -1:
        end = text.find(THINKING_END, start)
        text = text[:start] + ("" if end == -1 else text[end + len(THINKING_END) :])
    return text.replace(THINKING_END, "")
