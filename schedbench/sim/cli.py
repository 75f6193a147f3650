"""``schedbench simulate SCENARIO.yaml``: run a scenario through the simulated control plane
and write the event log, the timeline and a summary. :func:`register` adds the subcommand to
the main parser (as :mod:`schedbench.traces.cli` does)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InputError
from ..textfmt import format_table

DEFAULT_OUT = "schedbench-sim"


def _duration(text: str) -> float:
    from .timefmt import parse_duration

    return parse_duration(text, field="--until")


def cmd_simulate(args: argparse.Namespace) -> int:
    from ..progress import Progress
    from .output import write_outputs
    from .scenario import load_scenario
    from .simulation import simulate_scenario

    scenario = load_scenario(args.scenario)
    until = _duration(args.until) if args.until is not None else None
    if args.seed is not None and args.seed < 0:
        raise InputError(f"must be >= 0, got {args.seed}", field="--seed")
    end = until if until is not None else scenario.end
    out = Path(args.out)
    with Progress(int(end), f"simulating {scenario.name}") as bar:
        def advance_bar(now: float) -> None:   # simulated seconds done
            k = int(now) - bar.done
            if k > 0:
                bar.advance(k)

        sim = simulate_scenario(scenario, until=until, seed=args.seed,
                                log_path=str(out / "events.jsonl"),
                                on_step=advance_bar if bar.enabled else None)
        if bar.enabled and bar.done < int(end):
            bar.advance(int(end) - bar.done)
    summary = write_outputs(sim, out, plot=not args.no_plot)
    if args.format == "json":
        print(json.dumps(summary, indent=2))
    else:
        _print_table(summary, out)
    if not summary["no_pod_lost"]:
        print(f"schedbench: warning: {len(summary['lost_pods'])} pod(s) lost track of (see "
              f"{out / 'summary.json'}): this is a bug", file=sys.stderr)
        return 1
    return 0


def _print_table(s: dict, out: Path) -> None:
    p = s["pods"]
    print(f"Scenario {s['scenario']} (seed {s['seed']}): {s['end']:g} s simulated in "
          f"{s['wall_seconds']:g} s, {s['events']:,} events")
    print(f"Pods: {p['pods']} ({p['bound']} bound, {p['ready']} ready, {p['pending']} pending, "
          f"{p['unschedulable']} unschedulable, {p['terminal']} terminal); "
          f"{s['pods_created']} created, {p['deleted']} deleted; peak pending "
          f"{s['peak_pending']}")
    sch = s["scheduler"]
    print(f"Scheduler: {sch['binds']} binds in {sch['attempts']} attempts, "
          f"{sch['preemptions']} preemptions; no pod lost: "
          f"{'yes' if s['no_pod_lost'] else 'NO'}")
    if s["deployments"]:
        print()
        rows = [[d["deployment"], d["desired"], d["replicas"], d["updated"], d["ready"],
                 d["available"], s["min_available"].get(d["deployment"], "")]
                for d in s["deployments"]]
        print(format_table(["DEPLOYMENT", "DESIRED", "REPLICAS", "UPDATED", "READY",
                            "AVAILABLE", "MIN AVAILABLE*"], rows, (1, 2, 3, 4, 5, 6)))
        print("* the fewest available replicas sampled after the Deployment was first "
              "fully available")
    print()
    print(f"Wrote {out}/: events.jsonl, timeline.csv, deployments.csv, summary.json, "
          "summary.md" + (", nodes.csv" if (out / "nodes.csv").exists() else "")
          + (", timeline.png" if (out / "timeline.png").exists() else ""))


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``simulate`` to the main parser's subparsers."""
    p = subparsers.add_parser(
        "simulate", help="run a scenario through the simulated control plane (store, "
        "controllers, kubelets, scheduler) and write an event log and a timeline",
        description="Run SCENARIO.yaml (initial cluster, settings, timeline of actions) on a "
        "virtual clock; write DIR/events.jsonl, DIR/timeline.csv, DIR/deployments.csv, "
        "DIR/summary.json, DIR/summary.md and DIR/timeline.png.")
    p.add_argument("scenario", metavar="SCENARIO.yaml")
    p.add_argument("--until", metavar="T", help="end time (90s, 30m, 2h; default: the "
                   "scenario's until)")
    p.add_argument("--seed", type=int, metavar="N", help="seed (default: the scenario's)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"output directory (default: {DEFAULT_OUT})")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="standard output: a short table, or summary.json's content")
    p.add_argument("--no-plot", action="store_true", help="skip timeline.png")
    p.set_defaults(func=cmd_simulate)
    return p
