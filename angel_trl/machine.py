"""Where a run ran, for its result file: on a CPU the number of torch threads moves trained weights
(and so scores) a little, so runs that are compared say theirs."""

from __future__ import annotations

import platform

import torch


def check_device(device: str) -> None:
    """Raise ``ValueError`` unless ``device`` names a device torch can use here ("cpu", "cuda:1",
    "mps"): a typo or a GPU this machine lacks fails before a model loads, in words."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device {device!r} is not a device torch knows ({e})") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: no CUDA GPU is available to this torch {torch.__version__}")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available here")


def describe_machine(device: str, processes: int = 1) -> dict:
    """Platform, torch threads, processes, device and GPU name (None without one)."""
    return {
        "platform": platform.platform(), "torch_threads": torch.get_num_threads(), "processes": processes,
        "device": device, "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
