"""Where a run ran, for its result file: on a CPU the number of torch threads moves trained weights
(and so scores) a little, so runs that are compared say theirs."""

from __future__ import annotations

import platform

import torch


def describe_machine(device: str, processes: int = 1) -> dict:
    """Platform, torch threads, processes, device and GPU name (None without one)."""
    return {
        "platform": platform.platform(), "torch_threads": torch.get_num_threads(), "processes": processes,
        "device": device, "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
