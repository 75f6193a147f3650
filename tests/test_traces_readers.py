"""Readers of public traces: on the shared real samples (skipped when ../shared is absent), with
facts from their SOURCE.md files, and on small generated files for the rules and the tables the
shared samples lack."""

from __future__ import annotations

import gzip
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_TRACES

from schedbench.errors import InputError
from schedbench.traces import load_trace
from schedbench.traces.google2019 import write_sample

OPENB = SHARED_TRACES / "alibaba-gpu-v2023" / "csv"
G2011 = SHARED_TRACES / "google-2011-sample"
A2018 = SHARED_TRACES / "alibaba-v2018-sample"
G2019_SAMPLE = Path(__file__).parent / "data" / "traces" / "google2019"


def need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} not present (shared traces are outside the repo)")


# ------------------------------------------------------------------------------------ openb


def test_openb_default_matches_source_facts():
    need(OPENB)
    t = load_trace(f"openb:{OPENB / 'openb_pod_list_default.csv'}")
    n, p = t.nodes, t.pods
    assert t.name == "openb-default"
    assert len(n) == 1213 and n["gpu"].sum() == 6212
    assert n["cpu_milli"].sum() == 107_018_000 and n["memory_mib"].sum() == 503_828_480
    assert n.groupby("gpu_model")["gpu"].sum().to_dict() == {
        "G2": 4392, "T4": 842, "P100": 265, "V100M16": 195, "G3": 312, "V100M32": 204, "A10": 2}
    assert len(p) == 8152 and t.gpu_request_milli == 6_086_800
    assert p["num_gpu"].value_counts().to_dict() == {0: 1088, 1: 6989, 2: 16, 4: 15, 8: 44}
    assert ((p["num_gpu"] == 1) & (p["gpu_milli"] < 1000)).sum() == 3078
    assert p["memory_mib"].sum() == 303_546_211 and p["cpu_milli"].sum() == 85_436_012
    assert p["labels"].value_counts().to_dict() == {"qos=LS": 4647, "qos=BE": 3398,
                                                     "qos=Burstable": 100, "qos=Guaranteed": 7}
    # file order, times from creation/deletion
    assert p["id"].iloc[0] == "openb-pod-0000" and p["id"].is_monotonic_increasing
    assert p["arrival"].iloc[1] == 427061 and p["duration"].iloc[1] == 12902960 - 427061
    assert p["arrival"].max() == 12_901_761
    assert p["duration"].median() == 540 and (p["duration"] >= 1).all()


def test_openb_five_column_lists_and_gpu_specs():
    need(OPENB)
    multi = load_trace(f"openb:{OPENB / 'openb_pod_list_multigpu50.csv'}")
    assert len(multi.pods) == 9061
    assert (multi.pods["arrival"] == 0).all() and multi.pods["duration"].isna().all()
    spec = load_trace(f"openb:{OPENB / 'openb_pod_list_gpuspec33.csv'}")
    constrained = spec.pods[spec.pods["gpu_models"] != ""]
    assert len(constrained) == 2388
    # the spec is kept verbatim, repeats included (the simulator groups pods by the string)
    assert "V100M16|V100M32|V100M32" in set(constrained["gpu_models"])
    alt = load_trace(f"openb:{OPENB / 'openb_pod_list_default.csv'}",
                     nodes=str(OPENB / "openb_node_list_all_node.csv"))
    assert len(alt.nodes) == 1523 and alt.nodes["cpu_milli"].sum() == 125_514_000


def test_openb_generated_file_clamps_and_keeps_specs(tmp_path):
    (tmp_path / "openb_node_list_gpu_node.csv").write_text(
        "sn,cpu_milli,memory_mib,gpu,model\nn0,8000,1024,2,T4\nn1,4000,512,0,\n")
    (tmp_path / "pods.csv").write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,"
        "deletion_time,scheduled_time\n"
        "a,1000,10,1,1500,T4|V100M32|T4,LS,Running,5,5,5\n"
        "b,1000,10,0,-3,,,Pending,2,,\n")
    t = load_trace(f"openb:{tmp_path / 'pods.csv'}")
    p = t.pods
    assert p["gpu_milli"].tolist() == [1000, 0]                 # clamped like the FGD converter
    assert p["gpu_models"].tolist() == ["T4|V100M32|T4", ""]
    assert p["labels"].tolist() == ["qos=LS", ""]
    assert p["duration"].iloc[0] == 1.0 and np.isnan(p["duration"].iloc[1])
    assert p["id"].tolist() == ["a", "b"]                       # file order, not time order
    assert t.nodes["gpu_model"].tolist() == ["T4", ""]


def test_openb_errors(tmp_path):
    (tmp_path / "pods.csv").write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
                                       "a,1000,10,1,500\nb,1.5,10,1,500\n")
    with pytest.raises(InputError, match="openb_node_list_gpu_node.csv beside"):
        load_trace(f"openb:{tmp_path / 'pods.csv'}")
    (tmp_path / "nodes.csv").write_text("sn,cpu_milli,memory_mib,gpu,model\nn,1,1,1,T4\n")
    with pytest.raises(InputError) as info:
        load_trace(f"openb:{tmp_path / 'pods.csv'}", nodes=str(tmp_path / "nodes.csv"))
    assert (info.value.obj, info.value.field) == ("row 2", "cpu_milli")
    (tmp_path / "nodes2.csv").write_text("sn,cpu_milli,memory_mib,gpu\nn,1,1,1\n")
    with pytest.raises(InputError, match="missing column"):
        load_trace(f"openb:{tmp_path / 'pods.csv'}", nodes=str(tmp_path / "nodes2.csv"))


# ------------------------------------------------------------------------------ google 2011


def test_google2011_shared_sample_reads_in_seconds():
    need(G2011)
    start = time.perf_counter()
    t = load_trace(f"google2011:{G2011}")
    elapsed = time.perf_counter() - start
    assert elapsed < 15, elapsed
    n, p = t.nodes, t.pods
    # machine_events holds 12,583 machines; those added and not removed at the window start
    assert 12_000 < len(n) < 12_583
    assert n["name"].is_unique and (n["cpu_milli"] > 0).all()
    # most machines are CPU 0.5 -> 16 cores at the default 32 cores per 1.0
    assert n["cpu_milli"].value_counts().idxmax() == 16_000
    # SUBMIT rows in the two parts; a task resubmitted after failing is a new pod
    assert 140_000 < len(p) < 150_000
    assert p["arrival"].min() == 0 and p["arrival"].max() < 3 * 3600
    assert p["arrival"].is_monotonic_increasing
    assert p["id"].str.contains("-r").any()
    assert (p["duration"].dropna() >= 1).all()
    assert p["cpu_milli"].median() == round(0.0125 * 32_000)
    assert p["priority"].between(0, 11).all() and (p["priority"] == 0).mean() > 0.5
    assert t.meta["origin_seconds"] == pytest.approx(327.29 * 3600 - 600, abs=600)


def _gz(path: Path, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(rows) + "\n")


def test_google2011_event_rules_on_generated_parts(tmp_path):
    s = 1_000_000
    base = 600 * s
    _gz(tmp_path / "machine_events" / "part-00000-of-00001.csv.gz", [
        "0,1,0,P,0.5,0.25", "0,2,0,P,1,1", "0,3,0,Q,,",            # machine 3: no capacity
        f"{base + 1 * s},2,1,P,,",                                 # removed before the window
        f"{base + 500 * s},4,0,Q,0.25,0.5",                        # added after it starts
    ])
    ev = tmp_path / "task_events"
    _gz(ev / "part-00000-of-00500.csv.gz", [
        f"{base + 50 * s},,7,0,,4,u,0,9,0.5,0.25,0,0",             # job 7 task 0 finished earlier
        f"{base + 100 * s},,9,0,,0,u,2,9,0.5,0.25,0,0",            # SUBMIT
        f"{base + 101 * s},,9,0,1,1,u,2,9,0.5,0.25,0,0",           # SCHEDULE
        f"{base + 161 * s},,9,0,1,3,u,2,9,0.5,0.25,0,0",           # FAIL
        f"{base + 170 * s},,9,0,,0,u,2,9,0.5,0.25,0,0",            # resubmitted
    ])
    _gz(ev / "part-00001-of-00500.csv.gz", [
        f"{base + 172 * s},,9,0,1,1,u,2,9,0.5,0.25,0,0",
        f"{base + 200 * s},,9,1,,0,u,1,0,0.125,,0,0",              # never scheduled, no end
        f"{base + 260 * s},,9,1,,5,u,1,0,0.125,,0,0",              # killed while pending
        f"{base + 300 * s},,10,0,,0,u,0,0,0.01,0.01,0,0",
    ])
    with pytest.warns(UserWarning, match="1 machine"):
        t = load_trace(f"google2011:{tmp_path}", cpu_milli=64_000, memory_mib=1000)
    assert t.nodes["name"].tolist() == ["1"]                       # 2 removed, 3 unknown, 4 later
    assert t.nodes[["cpu_milli", "memory_mib"]].values.tolist() == [[32_000, 250]]
    p = t.pods.set_index("id")
    assert list(p.index) == ["9-0", "9-0-r2", "9-1", "10-0"]
    assert p.loc["9-0", "arrival"] == 0 and p.loc["9-0", "duration"] == 60
    assert p.loc["9-0-r2", "arrival"] == 70 and np.isnan(p.loc["9-0-r2", "duration"])
    assert p.loc["9-1", "duration"] == 60 and p.loc["9-1", "memory_mib"] == 0
    assert p.loc["9-0", "cpu_milli"] == 32_000 and p.loc["9-0", "priority"] == 9
    assert p.loc["9-0", "labels"] == "scheduling-class=2" and p.loc["9-0", "group"] == "9"
    assert t.meta["dropped_events"] == 1


def test_google2011_missing_tables_and_bad_event(tmp_path):
    with pytest.raises(InputError, match="no task_events part files"):
        load_trace(f"google2011:{tmp_path}")
    _gz(tmp_path / "task_events" / "part-00000-of-00500.csv.gz",
        ["700000000,,9,0,,42,u,2,9,0.5,0.25,0,0"])
    _gz(tmp_path / "machine_events" / "part-00000-of-00001.csv.gz", ["0,1,0,P,0.5,0.25"])
    with pytest.raises(InputError, match="unknown event type 42") as info:
        load_trace(f"google2011:{tmp_path}")
    assert info.value.file.endswith("part-00000-of-00500.csv.gz")
    assert (info.value.obj, info.value.field) == ("row 1", "event type")


# ---------------------------------------------------------------------------- alibaba 2018


def test_alibaba2018_shared_machine_meta():
    need(A2018)
    with pytest.warns(UserWarning, match="no pods"):
        t = load_trace(f"alibaba2018:{A2018}")
    assert len(t.nodes) == 4034 and len(t.pods) == 0
    assert (t.nodes["cpu_milli"] == 96_000).all()
    assert (t.nodes["memory_mib"] == 524_288).all()                 # mem_size 100 = default
    assert t.nodes["labels"].str.contains("topology.kubernetes.io/zone=").all()
    raw = pd.read_csv(A2018 / "machine_meta.csv", header=None, dtype=str)
    zones = t.nodes["labels"].str.extract(r"zone=([^;]*)")[0]
    assert zones.nunique() == raw[3].nunique() == 20       # SOURCE.md says 21; the file has 20


def test_alibaba2018_generated_batch_and_container_tables(tmp_path):
    (tmp_path / "machine_meta.csv").write_text("m_1,0,3,17,96,100,USING\n"
                                               "m_2,0,4,18,64,50,USING\nm_2,90,4,18,64,25,USING\n")
    (tmp_path / "batch_task.csv").write_text(
        "M1,2,j_1,1,Terminated,100,160,50,0.5\n"
        "R2_1,1,j_1,1,Running,120,0,100,1.0\n")
    (tmp_path / "container_meta.csv").write_text(
        "c_1,m_1,0,app_5,started,400,400,1.5\n"
        "c_1,m_1,50,app_5,started,800,800,1.5\n"
        "c_2,m_2,110,app_6,started,200,200,3\n")
    t = load_trace(f"alibaba2018:{tmp_path}", memory_mib=1000)
    assert t.nodes.set_index("name")["memory_mib"].to_dict() == {"m_1": 1000, "m_2": 250}
    p = t.pods.set_index("id")
    assert list(p.index) == ["c_1", "j_1.M1.0", "j_1.M1.1", "c_2", "j_1.R2_1.0"]
    assert p.loc["j_1.M1.1", "cpu_milli"] == 500 and p.loc["j_1.M1.1", "duration"] == 60
    assert p.loc["j_1.M1.0", "memory_mib"] == 5 and p.loc["j_1.M1.0", "group"] == "j_1"
    assert np.isnan(p.loc["j_1.R2_1.0", "duration"])               # not ended
    assert p.loc["c_1", "cpu_milli"] == 4000 and p.loc["c_1", "labels"] == "app=app_5"
    assert np.isnan(p.loc["c_1", "duration"]) and p.loc["c_2", "memory_mib"] == 30


def test_alibaba2018_until_and_size_guard(tmp_path, monkeypatch):
    from schedbench.traces import alibaba2018

    (tmp_path / "machine_meta.csv").write_text("m_1,0,3,17,96,100,USING\n")
    (tmp_path / "batch_task.csv").write_text("M1,3,j_1,1,Terminated,100,160,50,0.5\n"
                                             "M2,4,j_2,1,Terminated,900,960,50,0.5\n")
    (tmp_path / "container_meta.csv").write_text("c_1,m_1,0,a,started,400,400,1.5\n"
                                                 "c_2,m_1,1000,a,started,400,400,1.5\n")
    t = load_trace(f"alibaba2018:{tmp_path}", until=500)
    assert t.pods["id"].tolist() == ["c_1", "j_1.M1.0", "j_1.M1.1", "j_1.M1.2"]
    monkeypatch.setattr(alibaba2018, "MAX_PODS", 6)
    with pytest.raises(InputError, match="expands to 7 instances"):
        load_trace(f"alibaba2018:{tmp_path}")


def test_alibaba2018_bad_cell(tmp_path):
    (tmp_path / "machine_meta.csv").write_text("m_1,0,3,17,96,100,USING\nm_2,0,3,17,x,100,USING\n")
    with pytest.raises(InputError) as info:
        load_trace(f"alibaba2018:{tmp_path}")
    assert (info.value.obj, info.value.field) == ("row 2", "cpu_num")


# ------------------------------------------------------------------------------ google 2019


def test_google2019_sample_in_the_repo_is_the_generated_one(tmp_path):
    write_sample(tmp_path, seed=0)
    for f in ("instance_events.json", "machine_events.json", "collection_events.json"):
        assert (tmp_path / f).read_bytes() == (G2019_SAMPLE / f).read_bytes()


def test_google2019_reader_on_the_sample():
    t = load_trace(f"google2019:{G2019_SAMPLE}")
    # machine 1000 is removed before the first submission; 5 machines remain
    assert t.nodes["name"].tolist() == ["1001", "1002", "1003", "1004", "1005"]
    assert set(t.nodes["cpu_milli"]) <= {8000, 16000, 32000}
    p = t.pods
    # 4 collections x 3 instances, but collection 5003 is an alloc set: 9 task pods
    assert len(p) == 9 and not p["group"].eq("5003").any()
    assert p["arrival"].tolist() == [0, 1, 2, 30, 31, 32, 60, 61, 62]
    assert p["duration"].iloc[:2].tolist() == [60, 60] and np.isnan(p["duration"].iloc[2])
    assert p["priority"].tolist() == [100] * 3 + [101] * 3 + [102] * 3
    assert (p["cpu_milli"] > 0).all() and (p["memory_mib"] > 0).all()


def test_google2019_csv_export_gives_the_same_trace(tmp_path):
    write_sample(tmp_path / "json", seed=3)
    write_sample(tmp_path / "csv", seed=3, fmt="csv")
    a = load_trace(f"google2019:{tmp_path / 'json'}")
    b = load_trace(f"google2019:{tmp_path / 'csv'}")
    pd.testing.assert_frame_equal(a.nodes, b.nodes)
    pd.testing.assert_frame_equal(a.pods, b.pods)


def test_google2019_errors(tmp_path):
    with pytest.raises(InputError, match="no instance_events export"):
        load_trace(f"google2019:{tmp_path}")
    write_sample(tmp_path, seed=0)
    lines = (tmp_path / "instance_events.json").read_text().splitlines()
    lines[3] = lines[3].replace('"type": 0', '"type": "SUBMITTED"')
    (tmp_path / "instance_events.json").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        load_trace(f"google2019:{tmp_path}")
    assert (info.value.obj, info.value.field) == ("row 4", "type")
    lines[3] = lines[3].replace('"type": "SUBMITTED"', '"type": "SUBMIT"')   # names accepted
    (tmp_path / "instance_events.json").write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_trace(f"google2019:{tmp_path}").pods) == 9
