"""Process-level settings that must be in place before vLLM / Prefect / torch are imported."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Repo root when running from a checkout; caches stay inside it (git-ignored), never in ~/.cache.
ROOT = Path(__file__).resolve().parent.parent


def has_cuda_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None and os.system("nvidia-smi -L >/dev/null 2>&1") == 0


def configure_env(cache_root: Path | None = None) -> None:
    """Set defaults (never overriding the user's) for vLLM on CPU, Prefect and HF caches."""
    cache = Path(cache_root or os.environ.get("LEAKFIX_CACHE", ROOT / ".cache"))
    os.environ.setdefault("VLLM_CACHE_ROOT", str(cache / "vllm"))
    os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # The ephemeral Prefect server's telemetry heartbeat fights the flow for its SQLite lock.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not has_cuda_gpu():
        # vLLM CPU: KV cache size in GiB, and keep no core to itself (≈1.7× throughput on 2 cores).
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
        # Engine core in this process: each spawned process re-imports torch + vLLM (~15 s per
        # process on 2 cores), which cost more than the overlap it buys on a CPU.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
