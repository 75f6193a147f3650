"""What an optimal placement solve returns."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Statuses with a placement.
SOLVED = ("OPTIMAL", "FEASIBLE")


@dataclass
class OptimalResult:
    """A solve's outcome: the status of the lexicographic solve (OPTIMAL only when every
    objective was proven optimal in turn), the placement, and the primary objective's value,
    proven bound and relative gap."""

    status: str            # "OPTIMAL" | "FEASIBLE" | "INFEASIBLE" | "UNKNOWN"
    placed: int            # pending pods placed
    unplaced: list[str]    # "ns/name", input order
    nodes_used: int        # nodes hosting at least one pod (bound or placed) after placement
    objective: float       # value of the primary objective of the solution
    bound: float           # proven best bound of the primary objective
    gap: float             # |bound - objective| / max(1, |objective|); 0.0 when OPTIMAL
    wall_seconds: float
    assignments: dict[str, str] = field(default_factory=dict)  # placed pods, input order
    objectives: dict[str, float] = field(default_factory=dict)  # every objective, by name
    moved: dict[str, tuple[str, str]] = field(default_factory=dict)  # pod -> (from, to)
    #: GPU indices (the alibabacloud.com/gpu-index annotation) of the placed and moved GPU
    #: pods, and with moves of bound pods that stay on their node but change GPUs; when GPU
    #: sharing is modelled.
    gpu_indices: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: "exact" (one CP-SAT model) or "lns" (the decomposition of :mod:`.decompose`).
    method: str = "exact"
    #: The proven bound of each objective given the values of the ones before it (the
    #: primary's is ``bound``), by name.
    bounds: dict[str, float] = field(default_factory=dict)

    @property
    def solved(self) -> bool:
        return self.status in SOLVED

    def to_json(self) -> dict:
        """The issue's JSON, exactly these keys in this order."""
        return {"status": self.status, "placed": self.placed, "unplaced": list(self.unplaced),
                "nodes_used": self.nodes_used, "objective": self.objective,
                "bound": self.bound, "gap": self.gap, "wall_seconds": self.wall_seconds,
                "assignments": dict(self.assignments)}
