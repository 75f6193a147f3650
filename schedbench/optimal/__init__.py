"""The optimal baseline: a batch of pending pods placed by OR-Tools CP-SAT under the
constraints the scheduler enforces (:mod:`.mask` the feasibility mask from the filter plugins,
:mod:`.instance` pod classes and rules, :mod:`.model` the CP-SAT model, :mod:`.solver` the
lexicographic solve, :mod:`.decompose` the decomposition for large batches, :mod:`.cli` the
``schedbench optimal`` command)."""

from .result import OptimalResult
from .solver import solve, solve_snapshot

__all__ = ["OptimalResult", "solve", "solve_snapshot"]
