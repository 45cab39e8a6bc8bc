"""Where tensors live: ``--device auto|cpu|cuda[:i]|mps`` and mixed precision on GPUs.

One resolution rule for every command that runs a model (embedding, fine-tuning, PEFT tuning, transfer
runs): ``auto`` takes the first CUDA GPU when there is one and the CPU otherwise. It never picks MPS,
whose kernels still miss operations some models use; ask for ``mps`` explicitly. Mixed precision is
used on CUDA only (bfloat16 where the GPU supports it, else float16 with loss scaling); CPU runs stay
float32, so results on this project's CPU machines are what they always were.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import torch

from taskscout.errors import TaskscoutError

_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device for ``spec``; a clear error for a device this machine does not have."""
    if isinstance(spec, torch.device):
        return spec
    text = (spec or "auto").strip().lower()
    if not _PATTERN.match(text):
        raise TaskscoutError(f"unknown device {spec!r}; use auto, cpu, cuda, cuda:N or mps")
    if text == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise TaskscoutError("device 'mps' is not available on this machine; use --device cpu")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise TaskscoutError(f"device {spec!r} asked for, but this machine has no CUDA GPU; use --device cpu")
    index = int(text.split(":")[1]) if ":" in text else 0
    if index >= torch.cuda.device_count():
        raise TaskscoutError(
            f"device {spec!r} does not exist: this machine has {torch.cuda.device_count()} CUDA GPU(s)"
        )
    return torch.device(f"cuda:{index}")


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's parameters (CPU for a module without any)."""
    for parameter in module.parameters():
        return parameter.device
    return torch.device("cpu")


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision used for autocast on ``device``, or None to stay in float32."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """Mixed precision on CUDA; a no-op elsewhere."""
    dtype = amp_dtype(device)
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def grad_scaler(device: torch.device) -> Any:
    """A loss scaler when training in float16 (needed against underflow), else None."""
    if amp_dtype(device) is torch.float16:
        return torch.amp.GradScaler(device.type)
    return None


def describe(device: torch.device) -> dict[str, str]:
    """What to record with a run: the device and, on a GPU, its name and precision."""
    info = {"device": str(device)}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["precision"] = str(amp_dtype(device)).removeprefix("torch.")
    return info
