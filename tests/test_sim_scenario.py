"""Scenario files (schedbench/sim/scenario.py): parsing, validation with located errors, and
scenario actions carried out by the simulation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from schedbench.errors import InputError
from schedbench.sim.scenario import ACTIONS, load_scenario, parse_scenario
from schedbench.sim.simulation import Simulation, simulate_scenario

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "schedbench" / "data" / "scenarios").glob("*.yaml"))

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "a:1", "resources": {
                              "requests": {"cpu": "500m"}}}]}}}}


def scenario_doc(**extra):
    doc = {"name": "t", "seed": 2, "until": "10m",
           "cluster": {"nodes": {"count": 3, "cpu": "2", "memory": "4Gi", "zones": ["a", "b"]},
                       "objects": [DEPLOYMENT]},
           "timeline": []}
    doc.update(extra)
    return doc


def write(tmp_path: Path, doc, name="s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


# ----------------------------------------------------------------------------- parsing


def test_examples_parse():
    assert {p.stem for p in EXAMPLES} >= {"rolling-update", "node-failure", "hpa-scale-out"}
    for p in EXAMPLES:
        sc = load_scenario(p)
        assert sc.name == p.stem
        assert sc.actions and sc.until is not None and sc.actions[-1].time <= sc.until
        assert any(o.KIND == "Deployment" for o in sc.objects)


def test_times_settings_and_node_template(tmp_path):
    doc = scenario_doc(
        settings={"pod_startup_seconds": "3s", "node_monitor_grace_seconds": "1m",
                  "hpa_tolerance": 0.2, "default_toleration_seconds": "2m"},
        timeline=[{"at": "1m30s", "action": "scale", "deployment": "web", "replicas": 5},
                  {"after": "30s", "action": "fail-node", "node": "node-1"},
                  {"action": "advance", "by": "2m"},
                  {"action": "recover-node", "node": "node-1"},
                  {"at": "9m", "action": "set-image", "deployment": "web", "image": "a:2"}])
    sc = load_scenario(write(tmp_path, doc))
    assert [(a.time, a.kind) for a in sc.actions] == [
        (90.0, "scale"), (120.0, "fail-node"), (240.0, "advance"), (240.0, "recover-node"),
        (540.0, "set-image")]
    assert sc.actions[0].args == {"kind": "Deployment", "name": "web", "namespace": "default",
                                  "replicas": 5}
    cfg = sc.sim_config()
    assert cfg.pod_startup_seconds == 3.0 and cfg.node_monitor_grace_seconds == 60.0
    assert cfg.hpa_tolerance == 0.2 and cfg.default_toleration_seconds == 120
    nodes = [o for o in sc.objects if o.KIND == "Node"]
    assert [n.metadata.name for n in nodes] == ["node-1", "node-2", "node-3"]
    assert [n.metadata.labels["topology.kubernetes.io/zone"] for n in nodes] == ["a", "b", "a"]
    assert nodes[0].allocatable == {"cpu": 2000, "memory": 4 * 2 ** 30, "pods": 110}
    assert sc.end == 600.0


def test_files_relative_to_the_scenario(tmp_path):
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "web.yaml").write_text(yaml.safe_dump(DEPLOYMENT))
    extra = dict(DEPLOYMENT, metadata={"name": "other", "labels": {"app": "web"}})
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(extra))
    doc = scenario_doc(cluster={"files": ["apps/"]},
                       timeline=[{"at": "1m", "action": "apply", "files": ["other.yaml"]}])
    sc = load_scenario(write(tmp_path, doc))
    assert [o.ref for o in sc.objects] == ["Deployment/default/web"]
    assert [o.ref for o in sc.actions[0].args["objects"]] == ["Deployment/default/other"]


def test_until_defaults_to_ten_minutes_after_the_last_action():
    doc = scenario_doc(timeline=[{"at": "2m", "action": "pause", "deployment": "web"}])
    del doc["until"]
    assert parse_scenario(doc).end == 720.0


BAD = [
    ({"colour": 1}, "colour", "unknown field"),
    ({"profile": "fastest"}, "profile", "not a built-in policy"),
    ({"seed": -1}, "seed", ">= 0"),
    ({"seed": "x"}, "seed", "integer"),
    ({"until": "soon"}, "until", "invalid duration"),
    ({"settings": {"pod_startup": "2s"}}, "settings.pod_startup", "unknown field"),
    ({"settings": {"pod_startup_seconds": "-2s"}}, "settings.pod_startup_seconds", "duration"),
    ({"settings": {"hpa_tolerance": "x"}}, "settings.hpa_tolerance", "number"),
    ({"cluster": {"nodes": {"count": 0}}}, "cluster.nodes.count", ">= 1"),
    ({"cluster": {"nodes": {"count": 2, "cpu": "lots"}}}, "cluster.nodes.cpu", None),
    ({"cluster": {"files": ["missing.yaml"]}}, "cluster.files[0]", "no such file"),
    ({"cluster": {"objects": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                               "spec": {"containers": [{"name": "c", "resources": {
                                   "requests": {"cpu": "x"}}}]}}]}},
     "cluster.objects[0].spec.containers[0].resources.requests.cpu", None),
    ({"timeline": {"at": 1}}, "timeline", "list"),
    ({"timeline": [{"at": "1m"}]}, "timeline[0].action", "missing"),
    ({"timeline": [{"at": "1m", "action": "explode"}]}, "timeline[0].action", "unknown action"),
    ({"timeline": [{"at": "1m", "action": "scale", "replicas": 2}]},
     "timeline[0].deployment", "exactly one"),
    ({"timeline": [{"at": "1m", "action": "scale", "deployment": "web"}]},
     "timeline[0].replicas", "missing"),
    ({"timeline": [{"at": "1m", "action": "scale", "deployment": "web", "replicas": -1}]},
     "timeline[0].replicas", ">= 0"),
    ({"timeline": [{"at": "1m", "action": "fail-node", "node": "n", "when": 1}]},
     "timeline[0].when", "unknown field"),
    ({"timeline": [{"at": "2m", "action": "pause", "deployment": "web"},
                   {"at": "1m", "action": "resume", "deployment": "web"}]},
     "timeline[1].at", "time order"),
    ({"timeline": [{"at": "1m", "after": "1m", "action": "pause", "deployment": "web"}]},
     "timeline[0].after", "either"),
    ({"timeline": [{"at": "11m", "action": "pause", "deployment": "web"}]},
     "timeline[0].at", "after until"),
    ({"timeline": [{"at": "1m", "action": "set-request-rate", "service": "s", "rate": -3}]},
     "timeline[0].rate", "number"),
    ({"timeline": [{"at": "1m", "action": "delete", "kind": "Gadget", "name": "x"}]},
     "timeline[0].kind", "unknown kind"),
    ({"timeline": [{"at": "1m", "action": "add-node", "node": "n9"}]},
     "timeline[0].like", "missing"),
    ({"timeline": [{"at": "1m", "action": "apply"}]}, "timeline[0].objects", "give objects"),
    ({"timeline": [{"at": "1m", "action": "apply", "objects": [{"kind": "Pod"}]}]},
     "timeline[0].objects[0].apiVersion", "missing"),
    ({"timeline": [{"at": "1m", "action": "advance", "by": "forever"}]},
     "timeline[0].by", "invalid duration"),
]


@pytest.mark.parametrize("extra,field,text", BAD)
def test_bad_fields_name_file_and_field(tmp_path, extra, field, text):
    path = write(tmp_path, scenario_doc(**extra))
    with pytest.raises(InputError) as info:
        load_scenario(path)
    err = info.value
    assert err.file == str(path)
    assert err.field == field
    if text:
        assert text in err.message
    assert "\n" not in str(err)


def test_not_a_mapping_and_missing_file(tmp_path):
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="expected a mapping"):
        load_scenario(p)
    with pytest.raises(InputError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.yaml")


def test_every_action_is_documented():
    from schedbench.sim import scenario

    for name in ACTIONS:
        assert f"``{name}``" in scenario.__doc__


# ------------------------------------------------------------------------------ actions


def run_doc(doc, until=None):
    return simulate_scenario(parse_scenario(doc), until=until, keep_log=True)


def pods(sim, **where):
    return [p for p in sim.store.list("Pod")
            if all(getattr(p.spec, k) == v for k, v in where.items())]


def test_scale_drain_and_add_node():
    doc = scenario_doc(timeline=[
        {"at": "1m", "action": "scale", "deployment": "web", "replicas": 4},
        {"at": "2m", "action": "drain-node", "node": "node-1"},
        {"at": "3m", "action": "add-node", "node": "node-9", "like": "node-2"}])
    sim = run_doc(doc, until=300)
    assert len(sim.store.list("Pod")) == 4
    assert not pods(sim, node_name="node-1")
    node1 = sim.store.get("Node", "", "node-1")
    assert node1.spec.unschedulable
    assert sim.store.get("Node", "", "node-9").metadata.labels["kubernetes.io/hostname"] == \
        "node-9"
    assert all(p.spec.node_name for p in sim.store.list("Pod"))
    assert sim.check_no_pod_lost().ok
    actions = [r for r in sim.log.lines if '"event":"action"' in r]
    assert len(actions) == 3


def test_delete_and_apply_actions():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "solo"},
           "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]}}
    doc = scenario_doc(timeline=[
        {"at": "1m", "action": "apply", "objects": [pod]},
        {"at": "2m", "action": "delete", "kind": "Pod", "name": "solo"},
        {"at": "3m", "action": "delete", "objects": [DEPLOYMENT]}])
    sim = run_doc(doc, until=240)
    assert sim.store.list("Pod") == []
    assert sim.store.list("Deployment") == []
    causes = sim.accounting.deletions_by_cause()
    assert causes == {"garbage collected (owner ReplicaSet deleted)": 3,
                      "deleted by scenario": 1}
    assert sim.check_no_pod_lost().ok


def test_apply_replaces_the_spec_of_existing_objects():
    bigger = dict(DEPLOYMENT, spec=dict(DEPLOYMENT["spec"], replicas=5))
    doc = scenario_doc(profile="best-fit",
                       timeline=[{"at": "1m", "action": "apply", "objects": [bigger]}])
    sim = run_doc(doc, until=150)
    d = sim.store.get("Deployment", "default", "web")
    assert d.spec.replicas == 5 and d.metadata.generation == 2
    assert len(sim.store.list("Pod")) == 5
    # best-fit packs: 5 pods of 500m on 2-CPU nodes use two nodes, not three
    assert len({p.spec.node_name for p in sim.store.list("Pod")}) == 2


def test_an_action_on_a_missing_object_is_located():
    doc = scenario_doc(timeline=[{"at": "1m", "action": "fail-node", "node": "ghost"}])
    with pytest.raises(InputError) as info:
        run_doc(doc)
    assert info.value.obj == "Node/ghost"
    assert info.value.field == "timeline[0]"


def test_simulation_from_a_cluster_and_run_until():
    from schedbench.cluster import Cluster

    sc = parse_scenario(scenario_doc())
    sim = Simulation(Cluster.from_objects(sc.objects), seed=4)
    assert sim.run(120) == 120.0
    assert len(sim.store.list("Pod")) == 3
    assert sim.check_no_pod_lost().ok


def test_the_no_pod_lost_check_can_fail():
    """The check reports a deletion without a cause and a pending pod without a reason (a pod
    created but not yet seen by the scheduler, checked before the engine ran)."""
    sc = parse_scenario(scenario_doc())
    sim = Simulation(sc.objects, seed=1)
    sim.run(30)
    assert sim.check_no_pod_lost().ok
    victim = sim.store.list("Pod")[0]
    sim.store.delete("Pod", "default", victim.metadata.name)  # no cause
    from schedbench.manifests import object_from_dict

    sim.store.create(object_from_dict({"apiVersion": "v1", "kind": "Pod",
                                       "metadata": {"name": "fresh"},
                                       "spec": {"containers": [{"name": "c"}]}}))
    check = sim.check_no_pod_lost()
    assert not check.ok
    assert any("deleted without a cause" in x for x in check.lost)
    assert any(x.startswith("default/fresh: pending without a reason") for x in check.lost)
    sim.run(31)
    check = sim.check_no_pod_lost()
    assert [x for x in check.lost if "fresh" in x] == []  # scheduled by now
