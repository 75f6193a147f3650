"""The ``schedbench`` command line.

Every subcommand is a function ``cmd_NAME(args) -> int``. Bad input of any kind raises
:class:`~schedbench.errors.InputError`; :func:`main` turns it into one line on stderr
(``schedbench: error: FILE: KIND/NS/NAME: FIELD: message``) and exit status 2, without a
traceback. Warnings (unknown kinds, unknown fields) are one line each on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from . import __version__
from .cluster import Cluster, example_cluster_path, format_resource
from .errors import InputError
from .manifests import dump_manifests, manifest_files, read_yaml_documents
from .model.labels import parse_selector
from .textfmt import format_table

KIND_ALIASES = {
    "Pod": ("pod", "pods", "po"),
    "Node": ("node", "nodes", "no"),
    "Namespace": ("namespace", "namespaces", "ns"),
    "Service": ("service", "services", "svc"),
    "Deployment": ("deployment", "deployments", "deploy"),
    "ReplicaSet": ("replicaset", "replicasets", "rs"),
    "HorizontalPodAutoscaler": ("horizontalpodautoscaler", "horizontalpodautoscalers", "hpa"),
    "PriorityClass": ("priorityclass", "priorityclasses", "pc"),
}


def _cluster_paths(args: argparse.Namespace) -> list[str]:
    return args.cluster or [str(example_cluster_path())]


# ----------------------------------------------------------------------------------- summary


def cmd_summary(args: argparse.Namespace) -> int:
    cluster = Cluster.load(_cluster_paths(args))
    summary = cluster.summary()
    if args.format == "json":
        print(json.dumps(summary, indent=2, sort_keys=False))
        return 0
    n, p = summary["nodes"], summary["pods"]
    print(f"Cluster: {summary['source']}")
    print(f"Nodes: {n['total']} ({n['ready']} ready, {n['unschedulable']} unschedulable, "
          f"{n['tainted']} tainted) in zones: {', '.join(n['zones']) or '-'}")
    print(f"Pods: {p['total']} ({p['bound']} bound, {p['pending']} pending, "
          f"{p['terminated']} terminated)")
    print()
    rows = []
    for res, t in summary["resources"].items():
        alloc, req = t["allocatable"], t["requested"]
        share = f"{100 * req / alloc:.1f}%" if alloc else "-"
        rows.append([res, format_resource(res, alloc), format_resource(res, req), share])
    print(format_table(["RESOURCE", "ALLOCATABLE", "REQUESTED", "USED"], rows, (1, 2, 3)))
    print()
    rows = []
    for d in summary["node_details"]:
        status = "Ready" if d["ready"] else "NotReady"
        if d["unschedulable"]:
            status += ",SchedulingDisabled"
        cpu = f"{format_resource('cpu', d['requested'].get('cpu', 0))}/" \
              f"{format_resource('cpu', d['allocatable'].get('cpu', 0))}"
        mem = f"{format_resource('memory', d['requested'].get('memory', 0))}/" \
              f"{format_resource('memory', d['allocatable'].get('memory', 0))}"
        rows.append([d["name"], status, d["zone"] or "-", d["pods"], cpu, mem,
                     ",".join(d["taints"]) or "-"])
    print(format_table(["NODE", "STATUS", "ZONE", "PODS", "CPU REQ/ALLOC", "MEM REQ/ALLOC",
                        "TAINTS"], rows, (3,)))
    if summary["pending_pods"]:
        print()
        rows = [[pp["pod"], pp["priority"],
                 " ".join(f"{r}={format_resource(r, v)}" for r, v in pp["requests"].items())
                 or "(none)"] for pp in summary["pending_pods"]]
        print(format_table(["PENDING POD", "PRIORITY", "REQUESTS"], rows, (1,)))
    return 0


# ---------------------------------------------------------------------------------- validate


def _is_scheduler_config(path: Path) -> bool:
    docs = read_yaml_documents(path)
    return any(isinstance(d, dict) and d.get("kind") == "KubeSchedulerConfiguration"
               for d in docs)


def cmd_validate(args: argparse.Namespace) -> int:
    from .config import load_scheduler_config

    manifests: list[Path] = []
    configs = 0
    for path in args.paths:
        for f in manifest_files(path):
            if _is_scheduler_config(f):
                load_scheduler_config(f)
                configs += 1
            else:
                manifests.append(f)
    objects = Cluster.load(manifests).objects() if manifests else []
    print(f"ok: {len(objects)} objects in {len(manifests)} manifest files, "
          f"{configs} scheduler configurations")
    return 0


# ------------------------------------------------------------------------------------- get


def _resolve_kind(text: str) -> str:
    lowered = text.lower()
    for kind, aliases in KIND_ALIASES.items():
        if lowered in aliases:
            return kind
    known = ", ".join(a[1] for a in KIND_ALIASES.values())
    raise InputError(f"unknown resource type {text!r}; known: {known}", field="KIND")


def cmd_get(args: argparse.Namespace) -> int:
    kind = _resolve_kind(args.kind)
    try:
        selector = parse_selector(args.selector or "")
    except InputError as err:
        raise err.located(field="--selector") from None
    cluster = Cluster.load(_cluster_paths(args))
    objs = [o for o in cluster.objects() if o.KIND == kind and selector.matches(o.labels)]
    if args.namespace and kind in ("Pod", "Service", "Deployment", "ReplicaSet",
                                   "HorizontalPodAutoscaler"):
        objs = [o for o in objs if o.namespace == args.namespace]
    if args.output == "yaml":
        dump_manifests(objs, "-")
        return 0
    if args.output == "name":
        for o in objs:
            print(f"{KIND_ALIASES[kind][0]}/{o.name}")
        return 0
    if kind == "Pod":
        headers = ["NAMESPACE", "NAME", "STATUS", "NODE", "CPU", "MEMORY"]
        rows = [[p.namespace, p.name, p.status.phase or ("Bound" if p.is_bound else "Pending"),
                 p.node_name or "<none>", format_resource("cpu", p.requests().get("cpu", 0)),
                 format_resource("memory", p.requests().get("memory", 0))] for p in objs]
    elif kind == "Node":
        requested = cluster.requested_by_node()
        headers = ["NAME", "STATUS", "ZONE", "CPU REQ/ALLOC", "PODS", "TAINTS"]
        rows = [[n.name, "Ready" if n.is_ready() else "NotReady",
                 n.labels.get("topology.kubernetes.io/zone", "-"),
                 f"{format_resource('cpu', requested[n.name].get('cpu', 0))}/"
                 f"{format_resource('cpu', n.allocatable.get('cpu', 0))}",
                 requested[n.name].get("pods", 0),
                 ",".join(f"{t.key}:{t.effect}" for t in n.taints) or "-"] for n in objs]
    else:
        headers = ["NAMESPACE", "NAME"] if objs and objs[0].NAMESPACED else ["NAME"]
        rows = [([o.namespace] if o.NAMESPACED else []) + [o.name] for o in objs]
    if args.show_labels:
        headers = headers + ["LABELS"]
        rows = [r + [",".join(f"{k}={v}" for k, v in o.labels.items()) or "<none>"]
                for r, o in zip(rows, objs)]
    if not objs:
        print("No resources found.", file=sys.stderr)
        return 0
    print(format_table(headers, rows))
    return 0


# ------------------------------------------------------------------------------------- fmt


def cmd_fmt(args: argparse.Namespace) -> int:
    cluster = Cluster.load(args.paths)
    dump_manifests(cluster.objects(), args.output)
    if args.output != "-":
        print(f"wrote {len(cluster.objects())} objects to {args.output}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------- config


def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    from .config import config_to_dict, default_configuration, load_scheduler_config

    cfg = load_scheduler_config(args.config) if args.config else default_configuration()
    if args.format == "yaml":
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    profile = cfg.profile(args.scheduler_name)
    print(f"Profile: {profile.scheduler_name}")
    pct = profile.percentage_of_nodes_to_score
    print(f"percentageOfNodesToScore: {pct if pct is not None else 'adaptive (default)'}")
    rows = []
    for point, refs in profile.plugins.items():
        for ref in refs:
            weight = ref.weight if point == "score" else ""
            rows.append([point, ref.name, weight])
    print(format_table(["EXTENSION POINT", "PLUGIN", "WEIGHT"], rows, (2,)))
    return 0


# ---------------------------------------------------------------------------------- schedule


def _load_cluster_and_pods(args: argparse.Namespace) -> Cluster:
    paths = list(args.cluster) + (list(args.pods) if getattr(args, "pods", None) else [])
    return Cluster.load(paths)


def _scheduler(cluster: Cluster, args: argparse.Namespace):
    from .scheduler.profiles import resolve_profile
    from .scheduler.scheduler import Scheduler

    cfg, profile, name = resolve_profile(args.profile, args.scheduler_name)
    if _uses_gpu_sharing(cluster):
        from .replay.kube_engine import with_gpu_share

        profile = with_gpu_share(profile)
    return Scheduler(cluster, profile, config=cfg, seed=args.seed), name


def _uses_gpu_sharing(cluster: Cluster) -> bool:
    """A node offers shared GPUs or a pod asks for them (Alibaba's GPU-share annotations):
    then the GpuShare filter joins the profile, as in trace replays."""
    from .scheduler.snapshot import GPU_COUNT, GPU_MILLI

    return (any(GPU_COUNT in n.allocatable for n in cluster.nodes)
            or any(GPU_COUNT in p.metadata.annotations or GPU_MILLI in p.metadata.annotations
                   for p in cluster.pods))


def cmd_schedule(args: argparse.Namespace) -> int:
    from .progress import Progress

    cluster = _load_cluster_and_pods(args)
    scheduler, profile_name = _scheduler(cluster, args)
    queued = scheduler.enqueue_pending()
    others = [p.key for p in cluster.pending_pods()
              if p.spec.scheduler_name != scheduler.profile.scheduler_name]
    with Progress(queued, "scheduling") as progress:
        scheduler.run(on_result=lambda r: progress.advance() if r.scheduled else None)
    outcomes = scheduler.outcomes()
    for key in others:
        outcomes[key] = {"status": "pending", "reason": "schedulerName is not handled by "
                         f"profile {scheduler.profile.scheduler_name!r}"}
    if args.output:
        dump_manifests(cluster.objects(), args.output)
    placed = sorted(k for k, o in outcomes.items() if o["status"] == "scheduled")
    pending = sorted(k for k, o in outcomes.items() if o["status"] == "pending")
    failed = sorted(k for k, o in outcomes.items() if o["status"] == "failed")
    if args.format == "json":
        print(json.dumps({"profile": profile_name, "placed": len(placed),
                          "pending": len(pending), "failed": len(failed),
                          "pods": outcomes}, indent=2))
        return 0
    print(f"Profile {profile_name}: {len(placed)} placed, {len(pending)} pending, "
          f"{len(failed)} failed (preempted) of {len(outcomes)} pods")
    if placed:
        print()
        print(format_table(["POD", "NODE"], [[k, outcomes[k]["node"]] for k in placed]))
    rows = [[k, outcomes[k]["status"], outcomes[k]["reason"]] for k in pending + failed]
    if rows:
        print()
        print(format_table(["POD", "STATUS", "REASON"], rows))
    if args.output and args.output != "-":
        print(f"\nwrote {len(cluster.objects())} objects to {args.output}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------------- explain


def cmd_explain(args: argparse.Namespace) -> int:
    from .manifests import load_manifests
    from .scheduler.explain import explain_pod, explain_table

    pods = [o for o in load_manifests(args.pod) if o.KIND == "Pod"]
    if len(pods) != 1:
        raise InputError(f"expected exactly one Pod, found {len(pods)}", file=args.pod)
    pod = pods[0]
    cluster = Cluster.load(args.cluster)
    cluster.pods = [p for p in cluster.pods if p.key != pod.key]
    pod.spec.node_name = ""
    scheduler, profile_name = _scheduler(cluster, args)
    result = explain_pod(scheduler, pod, profile_name)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        print(explain_table(result))
    return 0


# ------------------------------------------------------------------------------------- bench


def cmd_bench(args: argparse.Namespace) -> int:
    from .scheduler.bench import run_bench

    result = run_bench(args.nodes, args.pods, args.profile, args.seed)
    if args.format == "json":
        print(json.dumps(result))
    else:
        print(format_table(list(result), [list(result.values())]))
    return 0


# ----------------------------------------------------------------------------------- compare


def cmd_compare(args: argparse.Namespace) -> int:
    from . import compare, report

    traces = compare.split_list(args.trace) or ["default"]
    policies = compare.split_list([args.policies]) if args.policies else list(
        compare.DEFAULT_POLICIES)
    seeds = compare.seed_list(args.seeds, args.seed_list, args.first_seed)
    if not args.tune > 0:
        raise InputError(f"expected a positive share of GPU capacity, got {args.tune}",
                         field="--tune")
    # Everything that can be checked is checked before the first run starts.
    compare.validate_policies(policies)
    if args.dask is None:       # a Dask cluster may see paths this machine does not
        compare.validate_traces(traces, args.nodes)
    optimal = compare.optimal_options(policies, args.optimal_every, args.optimal_time_limit,
                                      args.optimal_workers)
    specs = compare.expand_specs(traces, policies, seeds, experiment=args.experiment,
                                 nodes=args.nodes, tune=args.tune,
                                 fail_unschedulable=args.fail_unschedulable, optimal=optimal)
    outcomes = compare.run_sweep(specs, jobs=args.jobs, dask=args.dask)
    results = [o for o in outcomes if not isinstance(o, compare.RunFailure)]
    failures = [o for o in outcomes if isinstance(o, compare.RunFailure)]
    try:
        written = report.write_report(results, args.out, failures) if results else {}
    except OSError as err:
        raise InputError(f"cannot write the report: {err.strerror or err}", file=args.out,
                         field="--out") from None
    if args.format == "json":
        print(json.dumps(report.summary_dict(results), indent=2))
    else:
        print(report.summary_text(results, failures))
    for f in failures:
        print(f"schedbench: run failed: {f.spec.policy} seed {f.spec.seed} on {f.spec.trace}: "
              f"{f.error}", file=sys.stderr)
    if written:
        print(f"wrote {written['report.html']}, {written['report.md']}, "
              f"{written['summary.json']} and metrics/timeseries as Parquet and CSV",
              file=sys.stderr)
    return 1 if failures else 0


# ------------------------------------------------------------------------------------ main


def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", metavar="PROFILE",
                   help="built-in policy (default, best-fit, worst-fit, spread, balanced, "
                   "first-fit, random, dot-product) or a KubeSchedulerConfiguration file")
    p.add_argument("--scheduler-name", help="profile of the configuration (default: first)")
    p.add_argument("--seed", type=int, default=0, help="seed of the tie-break generator")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}"
                                         ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="schedbench",
        description="Optimise and benchmark Kubernetes-style cluster scheduling.")
    parser.add_argument("--version", action="version", version=f"schedbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("summary", help="summarise a cluster: nodes, capacity, bound and "
                       "pending pods (the bundled example without --cluster)")
    p.add_argument("--cluster", action="append", metavar="PATH",
                   help="manifest file or directory (repeatable); default: bundled example")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("validate", help="check manifests and KubeSchedulerConfiguration files")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("get", help="list objects of a kind, filtered by a label selector")
    p.add_argument("kind", metavar="KIND", help="pods, nodes, services, deployments, ...")
    p.add_argument("-l", "--selector", help="label selector, kubectl syntax: 'app=web,tier!=db'")
    p.add_argument("-n", "--namespace", help="only this namespace (default: all)")
    p.add_argument("--cluster", action="append", metavar="PATH")
    p.add_argument("-o", "--output", choices=("table", "name", "yaml"), default="table")
    p.add_argument("--show-labels", action="store_true")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("fmt", help="load manifests and write them back in canonical form")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-o", "--output", default="-", metavar="OUT",
                   help="output file (written atomically); default: standard output")
    p.set_defaults(func=cmd_fmt)

    p = sub.add_parser("config", help="show the effective scheduler profile (kube-scheduler's "
                       "default, or a KubeSchedulerConfiguration file)")
    p.add_argument("--config", metavar="FILE", help="KubeSchedulerConfiguration YAML")
    p.add_argument("--scheduler-name", help="profile to show (default: the first)")
    p.add_argument("--format", choices=("table", "yaml"), default="table")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("schedule", help="schedule the pending pods of a cluster through the "
                       "scheduling queue and write the cluster back with nodeName set")
    p.add_argument("--cluster", action="append", required=True, metavar="PATH",
                   help="manifests: nodes, bound and pending pods, services, ... (repeatable)")
    p.add_argument("--pods", action="append", metavar="PATH", help="more pending pods")
    _profile_args(p)
    p.add_argument("-o", "--output", metavar="OUT.yaml",
                   help="write the cluster with spec.nodeName set (atomically; - = stdout)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser("explain", help="every filter verdict and score of one pod on every "
                       "node, and the node the scheduler picks")
    p.add_argument("--cluster", action="append", required=True, metavar="PATH")
    p.add_argument("--pod", required=True, metavar="POD.yaml")
    _profile_args(p)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("bench", help="schedule M synthetic pods on N synthetic nodes and "
                       "report pods/s (kernel compilation and cluster building not timed)")
    p.add_argument("--nodes", type=_positive_int, default=5000)
    p.add_argument("--pods", type=_positive_int, default=10000)
    p.add_argument("--profile", default="default",
                   help="built-in policy name or KubeSchedulerConfiguration file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=("json", "table"), default="json")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "compare", help="replay traces under several policies and seeds, in parallel, and "
        "report which policy wins (the bundled default trace without options)",
        description="Run every policy on every trace with every seed (in parallel local "
        "processes, or on a Dask cluster), print the summary table and write DIR/report.html, "
        "DIR/report.md, DIR/summary.json and the metrics as Parquet and CSV.")
    p.add_argument("--trace", action="append", metavar="T",
                   help="FORMAT:PATH (FORMAT: native, openb, google2011, alibaba2018, "
                   "google2019; a bare path is native) or 'default' (the bundled trace); "
                   "repeatable or comma-separated (default: default)")
    p.add_argument("--nodes", metavar="FILE",
                   help="openb: node list other than openb_node_list_gpu_node.csv beside the "
                   "pod list")
    p.add_argument("--policies", metavar="A,B,...",
                   help="comma-separated built-in policies (default, best-fit, worst-fit, "
                   "spread, balanced, first-fit, random, dot-product), the FGD paper's atc23-* "
                   "policies, or KubeSchedulerConfiguration files (default: "
                   "best-fit,worst-fit,spread,default); add 'optimal' for the CP-SAT optimum "
                   "and each policy's gap to it")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=_positive_int, metavar="N",
                       help="run N seeds: FIRST-SEED .. FIRST-SEED+N-1, i.e. 42..51 for "
                       "--seeds 10 as in the FGD paper (default: 1)")
    seeds.add_argument("--seed-list", type=_int_list, metavar="S1,S2,...",
                       help="these seeds instead of --seeds")
    p.add_argument("--first-seed", type=int, default=42, metavar="S",
                   help="first seed of --seeds (default: 42)")
    p.add_argument("--experiment", choices=("replay", "fill"), default="replay",
                   help="replay: event-driven replay of arrivals and departures; fill: the "
                   "FGD paper's fill experiment (shuffle, inflate to --tune of GPU capacity, "
                   "place one at a time, no departures) (default: replay)")
    p.add_argument("--tune", type=float, default=1.3, metavar="X",
                   help="fill: inflate the workload to X times the GPU capacity (default: 1.3)")
    p.add_argument("--fail-unschedulable", action="store_true",
                   help="replay: a pod that fits nowhere fails instead of waiting to retry")
    p.add_argument("--optimal-every", type=_positive_int, metavar="K",
                   help="with the optimal policy, replay: re-optimise the active pods every K "
                   "arrivals and at the last arrival (default: ten snapshots per replay)")
    p.add_argument("--optimal-time-limit", type=float, metavar="S",
                   help="with the optimal policy: seconds per CP-SAT solve (default: 10)")
    p.add_argument("--optimal-workers", type=_positive_int, metavar="N",
                   help="with the optimal policy: CP-SAT workers per solve (default: 1; runs "
                   "already go in parallel, see --jobs)")
    p.add_argument("--jobs", type=_positive_int, metavar="N",
                   help="local worker processes (default: one per CPU; 1 runs in this "
                   "process)")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run on this Dask scheduler (tcp://host:8786) instead of local "
                   "processes; needs the schedbench[dask] extra")
    p.add_argument("--out", default="schedbench-report", metavar="DIR",
                   help="report directory (default: schedbench-report)")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="standard output: the summary table, or summary.json's content")
    p.set_defaults(func=cmd_compare)

    from .traces.cli import register as register_trace_commands

    register_trace_commands(sub)

    from .optimal.cli import register as register_optimal_command

    register_optimal_command(sub)
    from .sim.cli import register as register_simulate_command

    register_simulate_command(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"schedbench: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except InputError as err:
        print(f"schedbench: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("schedbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
