"""``schedbench optimal``: place the pending pods of a cluster optimally (CP-SAT).

Exit status: 0 when a placement was found (OPTIMAL or FEASIBLE), 2 on bad input (one line on
stderr), :data:`EXIT_INFEASIBLE` (3) when the constraints admit no placement (only possible
when every pod must be placed: objectives without ``placed``, or moves), :data:`EXIT_UNKNOWN`
(4) when the time limit ran out before any placement was found. The result is printed in
every case. :func:`register` adds the subcommand to the main parser.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..textfmt import format_table

EXIT_INFEASIBLE = 3
EXIT_UNKNOWN = 4


def _apply(cluster, result) -> None:
    """Set ``spec.nodeName`` (and the GPU index annotation) of the placed and moved pods."""
    from ..scheduler.snapshot import GPU_INDEX

    by_key = {p.key: p for p in cluster.pods}
    for key, node in result.assignments.items():
        by_key[key].spec.node_name = node
    for key, (_src, dst) in result.moved.items():
        by_key[key].spec.node_name = dst
    for key, idx in result.gpu_indices.items():
        by_key[key].metadata.annotations[GPU_INDEX] = "-".join(map(str, idx))


def cmd_optimal(args: argparse.Namespace) -> int:
    from ..cli import _load_cluster_and_pods
    from ..manifests import dump_manifests
    from ..scheduler.profiles import resolve_profile
    from .solver import parse_objectives, solve

    objectives = parse_objectives(args.objective)
    cluster = _load_cluster_and_pods(args)
    profile = None
    if args.profile is not None or args.scheduler_name is not None:
        _, profile, _ = resolve_profile(args.profile, args.scheduler_name)
    hint = None if args.hint in ("none", "") else args.hint
    result = solve(cluster, objective=objectives, time_limit=args.time_limit,
                   workers=args.workers, seed=args.seed, hint=hint,
                   allow_moves=args.allow_moves, profile=profile, method=args.method,
                   deterministic=not args.wall_clock)
    if args.output and result.solved:
        _apply(cluster, result)
        dump_manifests(cluster.objects(), args.output)
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"{result.status}: {result.placed} placed, {len(result.unplaced)} unplaced, "
              f"{result.nodes_used} nodes used; {objectives[0]} {result.objective:g} "
              f"(bound {result.bound:g}, gap {100 * result.gap:.2f}%) in "
              f"{result.wall_seconds:.2f} s [{result.method}]")
        others = {k: v for k, v in result.objectives.items() if k != objectives[0]}
        if others:
            print("objectives: " + ", ".join(f"{k} {v:g}" for k, v in others.items()))
        if result.assignments:
            print()
            print(format_table(["POD", "NODE"], [[k, v] for k, v in result.assignments.items()]))
        if result.moved:
            print()
            print(format_table(["MOVED POD", "FROM", "TO"],
                               [[k, a, b] for k, (a, b) in result.moved.items()]))
        if result.unplaced:
            print()
            print(format_table(["UNPLACED POD"], [[k] for k in result.unplaced]))
    if args.output and args.output != "-" and result.solved:
        print(f"wrote {len(cluster.objects())} objects to {args.output}", file=sys.stderr)
    if result.status == "INFEASIBLE":
        return EXIT_INFEASIBLE
    if result.status == "UNKNOWN":
        return EXIT_UNKNOWN
    return 0


def register(sub) -> argparse.ArgumentParser:
    """Add ``optimal`` to the main parser's subcommands."""
    p = sub.add_parser(
        "optimal", help="place the pending pods optimally (OR-Tools CP-SAT) under the "
        "scheduler's constraints; prints the placement, bound and gap",
        description="Place the pending pods of a cluster optimally under the constraints the "
        "scheduler enforces (its filter plugins, capacities, GPU share, inter-pod "
        "(anti-)affinity, DoNotSchedule spread). Exit status 0 with a placement, 2 on bad "
        f"input, {EXIT_INFEASIBLE} when no placement exists, {EXIT_UNKNOWN} when the time "
        "limit ran out first.")
    p.add_argument("--cluster", action="append", required=True, metavar="PATH",
                   help="manifests: nodes, bound and pending pods, ... (repeatable)")
    p.add_argument("--pods", action="append", metavar="PATH", help="more pending pods")
    p.add_argument("--objective", default="placed,nodes", metavar="A,B,...",
                   help="objectives in lexicographic order: placed (priority-weighted pods "
                   "placed), nodes (nodes used), balance (peak utilisation), preferences "
                   "(preferred node affinity); without placed, every pod must be placed "
                   "(default: placed,nodes)")
    p.add_argument("--time-limit", type=float, default=10.0, metavar="S",
                   help="seconds for the whole solve (default: 10); without --wall-clock, "
                   "CP-SAT gets 0.5 deterministic work units per second, with a wall-clock "
                   "guard at twice the limit")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="CP-SAT workers (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="CP-SAT's and the hint's seed")
    p.add_argument("--hint", default="best-fit", metavar="POLICY",
                   help="policy whose placement starts the search, or 'none' "
                   "(default: best-fit)")
    p.add_argument("--profile", metavar="PROFILE",
                   help="the profile whose filters define feasibility: a built-in policy or a "
                   "KubeSchedulerConfiguration file (default: kube-scheduler's default)")
    p.add_argument("--scheduler-name", help="profile of the configuration (default: first)")
    p.add_argument("--allow-moves", action="store_true",
                   help="bound pods may move to other nodes (never evicted); the fewest moves "
                   "are sought after the objectives")
    p.add_argument("--method", choices=("auto", "exact", "lns"), default="auto",
                   help="exact: one CP-SAT model; lns: node-window decomposition with a "
                   "relaxation bound; auto: lns above 150,000 variables (default)")
    p.add_argument("--wall-clock", action="store_true",
                   help="CP-SAT's parallel portfolio on wall time (often stronger; results "
                   "that stop at the time limit can vary between runs)")
    p.add_argument("-o", "--output", metavar="OUT.yaml",
                   help="write the cluster with spec.nodeName set (atomically; - = stdout)")
    p.add_argument("--format", choices=("json", "table"), default="json")
    p.set_defaults(func=cmd_optimal)
    return p
