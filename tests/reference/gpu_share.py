"""Plain-Python reference of the GpuShare filter and the Open-Gpu-Share GPU choice, written
from the FGD simulator's description (docs: fgd-fill-method.md, section 2.6)."""

from __future__ import annotations

NO_GPU, MODEL, INSUFFICIENT = "node(s) had no GPU", "node(s) didn't match GPU model", \
    "Insufficient GPU"


def filter_verdict(free: list[int], model: str, num_gpu: int, milli: int,
                   models: tuple[str, ...]) -> tuple[int, list[str]]:
    """(code, reasons) of one node with GPUs ``free`` (milli left per GPU) of ``model`` ("" =
    unknown) for a pod asking ``num_gpu`` x ``milli`` of one of ``models`` (() = any)."""
    if not free:
        return 3, [NO_GPU]
    if models and model not in models:
        return 3, [MODEL]
    if num_gpu > len(free):
        return 3, [INSUFFICIENT]
    fitting = [g for g in free if g >= milli]
    if len(fitting) < num_gpu:
        return 2, [INSUFFICIENT]
    return 0, []


def choose(free: list[int], num_gpu: int, milli: int) -> tuple[int, ...]:
    """Share pods: the fitting GPU with the least left, first on ties; others: the first
    ``num_gpu`` GPUs with ``milli`` left. () if none fit."""
    if num_gpu == 1 and milli < 1000:
        cands = [(g, j) for j, g in enumerate(free) if g >= milli]
        return (min(cands)[1],) if cands else ()
    idx = [j for j, g in enumerate(free) if g >= milli][:num_gpu]
    return tuple(idx) if len(idx) == num_gpu else ()
