"""Tests of schedbench.config: KubeSchedulerConfiguration loading as kube-scheduler v1.35.

Expected lists below are the v1.35 facts: getDefaultPlugins' multiPoint list (with
DynamicResources before DefaultPreemption, the DRA gate being locked on) expanded over the
extension points each in-tree plugin implements, as NewFramework does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from schedbench import config as C
from schedbench.config import (
    EXTENSION_POINTS,
    ConfigError,
    DefaultPreemptionArgs,
    DynamicResourcesArgs,
    ExtensionPoint,
    InterPodAffinityArgs,
    NodeAffinityArgs,
    NodeResourcesBalancedAllocationArgs,
    NodeResourcesFitArgs,
    PluginRef,
    PodTopologySpreadArgs,
    ResourceSpec,
    TopologySpreadDefault,
    UtilizationShapePoint,
    VolumeBindingArgs,
    config_to_dict,
    default_configuration,
    format_go_duration,
    load_scheduler_config,
    parse_go_duration,
    parse_scheduler_config,
    register_plugin,
    unregister_plugin,
)

DATA = Path(__file__).parent / "data" / "config"
HEAD = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration"}

DEFAULT_LISTS: dict[str, list] = {
    "preEnqueue": ["SchedulingGates", "DynamicResources", "DefaultPreemption"],
    "queueSort": ["PrioritySort"],
    "preFilter": ["NodeAffinity", "NodePorts", "NodeResourcesFit", "VolumeRestrictions",
                  "NodeVolumeLimits", "VolumeBinding", "VolumeZone", "PodTopologySpread",
                  "InterPodAffinity", "DynamicResources"],
    "filter": ["NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts",
               "NodeResourcesFit", "VolumeRestrictions", "NodeVolumeLimits", "VolumeBinding",
               "VolumeZone", "PodTopologySpread", "InterPodAffinity", "DynamicResources"],
    "postFilter": ["DynamicResources", "DefaultPreemption"],
    "preScore": ["TaintToleration", "NodeAffinity", "NodeResourcesFit", "VolumeBinding",
                 "PodTopologySpread", "InterPodAffinity", "NodeResourcesBalancedAllocation"],
    "score": [("TaintToleration", 3), ("NodeAffinity", 2), ("NodeResourcesFit", 1),
              ("VolumeBinding", 1), ("PodTopologySpread", 2), ("InterPodAffinity", 2),
              ("DynamicResources", 1), ("NodeResourcesBalancedAllocation", 1),
              ("ImageLocality", 1)],
    "reserve": ["VolumeBinding", "DynamicResources"],
    "permit": [],
    "preBind": ["VolumeBinding", "DynamicResources"],
    "bind": ["DefaultBinder"],
    "postBind": [],
}


def expected_refs(lists: dict[str, list]) -> dict[str, list[PluginRef]]:
    return {point: [PluginRef(*x) if isinstance(x, tuple) else PluginRef(x) for x in names]
            for point, names in lists.items()}


def parse(**fields) -> C.SchedulerConfiguration:
    return parse_scheduler_config({**HEAD, **fields}, source="test.yaml")


def parse_profile(**profile) -> C.Profile:
    return parse(profiles=[profile]).profile()


def error_of(data: dict, *, head: bool = True) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_scheduler_config({**HEAD, **data} if head else data, source="test.yaml")
    return info.value


def profile_error(**profile) -> ConfigError:
    return error_of({"profiles": [profile]})


def args_error(name: str, args) -> ConfigError:
    return profile_error(pluginConfig=[{"name": name, "args": args}])


def with_lists(**changes) -> dict[str, list[PluginRef]]:
    lists = {k: list(v) for k, v in DEFAULT_LISTS.items()}
    lists.update(changes)
    return expected_refs(lists)


@pytest.fixture
def custom_plugins():
    """Register schedbench-style out-of-tree plugins for one test."""

    class ToyGpuShareArgs:
        def __init__(self, slices: int = 4) -> None:
            self.slices = slices

        def __eq__(self, other):
            return isinstance(other, ToyGpuShareArgs) and other.slices == self.slices

        @classmethod
        def from_dict(cls, data):
            unknown = set(data) - {"slices"}
            if unknown:
                raise ConfigError(f'unknown field "{unknown.pop()}"')
            slices = data.get("slices", 4)
            if not isinstance(slices, int) or slices < 1:
                raise ConfigError("must be a positive integer", field="slices")
            return cls(slices)

        def to_dict(self):
            return {"slices": self.slices}

    register_plugin("ToyGpuShare", ["PreFilter", "Filter", "Score", "reserve"], ToyGpuShareArgs)
    register_plugin("FifoSort", [ExtensionPoint.QUEUE_SORT])
    try:
        yield ToyGpuShareArgs
    finally:
        unregister_plugin("ToyGpuShare")
        unregister_plugin("FifoSort")


# -- defaults --------------------------------------------------------------------------------

def test_default_profile_matches_kube_scheduler_v1_35():
    cfg = default_configuration()
    prof = cfg.profile()
    assert prof.scheduler_name == "default-scheduler"
    assert set(prof.plugins) == set(EXTENSION_POINTS)
    assert prof.plugins == expected_refs(DEFAULT_LISTS)
    # StrEnum keys: plain strings and members are the same lookup.
    assert prof.plugins["score"] is prof.plugins[ExtensionPoint.SCORE]
    assert prof.score_weights["TaintToleration"] == 3
    assert prof.queue_sort == "PrioritySort"


def test_default_multipoint_order_has_dra_before_preemption_and_no_removed_plugins():
    names = [n for n, _ in C.DEFAULT_MULTIPOINT]
    assert names.index("DynamicResources") == names.index("DefaultPreemption") - 1
    assert not set(names) & set(C.REMOVED_PLUGINS)
    assert "SelectorSpread" not in names
    weights = {n: w for n, w in C.DEFAULT_MULTIPOINT if w is not None}
    assert weights == {"TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1,
                       "PodTopologySpread": 2, "InterPodAffinity": 2,
                       "NodeResourcesBalancedAllocation": 1, "ImageLocality": 1}


def test_default_plugin_args():
    args = default_configuration().profile().plugin_args
    assert args == {
        "DefaultPreemption": DefaultPreemptionArgs(10, 100),
        "DynamicResources": DynamicResourcesArgs(10_000_000_000),
        "InterPodAffinity": InterPodAffinityArgs(1, False),
        "NodeAffinity": NodeAffinityArgs(None),
        "NodeResourcesBalancedAllocation": NodeResourcesBalancedAllocationArgs(
            (ResourceSpec("cpu", 1), ResourceSpec("memory", 1))),
        "NodeResourcesFit": NodeResourcesFitArgs(),
        "PodTopologySpread": PodTopologySpreadArgs((), "System"),
        "VolumeBinding": VolumeBindingArgs(600),
    }
    fit = args["NodeResourcesFit"].scoring_strategy
    assert fit.type == "LeastAllocated"
    assert fit.resources == (ResourceSpec("cpu", 1), ResourceSpec("memory", 1))
    assert args["DynamicResources"].filter_timeout_seconds == 10.0


def test_default_top_level_fields():
    cfg = default_configuration()
    assert (cfg.parallelism, cfg.percentage_of_nodes_to_score) == (16, 0)
    assert (cfg.pod_initial_backoff_seconds, cfg.pod_max_backoff_seconds) == (1, 10)
    assert cfg.profile().percentage_of_nodes_to_score is None
    assert cfg.effective_percentage_of_nodes_to_score() == 0
    assert len(cfg.profiles) == 1


def test_system_default_topology_spread_constraints():
    ptsa = default_configuration().profile().args("PodTopologySpread")
    assert ptsa.effective_default_constraints == (
        TopologySpreadDefault(3, "kubernetes.io/hostname", "ScheduleAnyway"),
        TopologySpreadDefault(5, "topology.kubernetes.io/zone", "ScheduleAnyway"))


@pytest.mark.parametrize("profiles", [None, [], [{}], [{"schedulerName": "default-scheduler"}],
                                      [{"plugins": {}, "pluginConfig": []}]])
def test_spellings_of_the_default_profile_are_equal(profiles):
    data = {} if profiles is None else {"profiles": profiles}
    assert parse(**data) == default_configuration()


def test_single_named_profile_keeps_its_name():
    cfg = parse(profiles=[{"schedulerName": "simplified-scheduler"}])
    assert cfg.profile().scheduler_name == "simplified-scheduler"
    assert cfg.profile("simplified-scheduler").plugins == expected_refs(DEFAULT_LISTS)
    with pytest.raises(KeyError, match="default-scheduler"):
        cfg.profile("default-scheduler")


# -- merging and multiPoint expansion ----------------------------------------------------------

def test_disable_one_plugin_at_one_point():
    prof = parse_profile(plugins={"score": {"disabled": [{"name": "ImageLocality"}]}})
    assert prof.plugins == with_lists(score=DEFAULT_LISTS["score"][:-1])


def test_disable_in_multipoint_removes_plugin_everywhere_and_its_default_args():
    prof = parse_profile(plugins={"multiPoint": {"disabled": [{"name": "InterPodAffinity"}]}})
    assert all("InterPodAffinity" not in prof.names(p) for p in EXTENSION_POINTS)
    assert "InterPodAffinity" not in prof.plugin_args
    assert prof.names("filter") == [n for n in DEFAULT_LISTS["filter"] if n != "InterPodAffinity"]


def test_specific_point_overrides_multipoint_order_and_weight():
    prof = parse_profile(plugins={"score": {"enabled": [{"name": "PodTopologySpread",
                                                          "weight": 7}]}})
    score = prof.plugins["score"]
    assert score[0] == PluginRef("PodTopologySpread", 7)
    assert [r.name for r in score[1:]] == [n for n, _ in DEFAULT_LISTS["score"]
                                           if n != "PodTopologySpread"]
    assert prof.names("filter") == DEFAULT_LISTS["filter"]


def test_specific_point_entry_without_weight_means_weight_one_not_the_multipoint_weight():
    prof = parse_profile(plugins={"score": {"enabled": [{"name": "TaintToleration"}]}})
    assert prof.plugins["score"][0] == PluginRef("TaintToleration", 1)


def test_relisting_a_default_in_multipoint_replaces_it_in_place():
    prof = parse_profile(plugins={"multiPoint": {"enabled": [
        {"name": "TaintToleration", "weight": 7}, {"name": "NodeAffinity"}]}})
    assert prof.plugins["score"][:3] == [PluginRef("TaintToleration", 7),
                                         PluginRef("NodeAffinity", 1),
                                         PluginRef("NodeResourcesFit", 1)]
    assert prof.names("filter") == DEFAULT_LISTS["filter"]


def test_disable_all_then_enable_explicit_list_at_score():
    prof = parse_profile(plugins={"score": {
        "disabled": [{"name": "*"}],
        "enabled": [{"name": "ImageLocality", "weight": 4}, {"name": "NodeResourcesFit"}]}})
    assert prof.plugins["score"] == [PluginRef("ImageLocality", 4),
                                     PluginRef("NodeResourcesFit", 1)]
    assert prof.names("preScore") == DEFAULT_LISTS["preScore"]


def test_plugin_disabled_then_enabled_in_multipoint_moves_to_the_end():
    prof = parse_profile(plugins={"multiPoint": {
        "disabled": [{"name": "NodeResourcesFit"}],
        "enabled": [{"name": "NodeResourcesFit", "weight": 4}]}})
    others = [n for n in DEFAULT_LISTS["filter"] if n != "NodeResourcesFit"]
    assert prof.names("filter") == others + ["NodeResourcesFit"]
    assert prof.plugins["score"][-1] == PluginRef("NodeResourcesFit", 4)
    assert "NodeResourcesFit" in prof.plugin_args


def test_enabled_wins_over_disabled_at_the_same_point():
    prof = parse_profile(plugins={"score": {"disabled": [{"name": "NodeAffinity"}],
                                            "enabled": [{"name": "NodeAffinity", "weight": 5}]}})
    assert prof.plugins["score"][-1] == PluginRef("NodeAffinity", 5)
    assert prof.names("score").count("NodeAffinity") == 1


def test_kube_scheduler_server_test_multipoint_config():
    """The 'component configuration v1' case of cmd/kube-scheduler/app/server_test.go."""
    names = ["SchedulingGates", "DefaultBinder", "PrioritySort", "DefaultPreemption",
             "VolumeBinding", "NodeResourcesFit", "NodePorts", "InterPodAffinity",
             "TaintToleration", "DynamicResources"]
    prof = parse_profile(plugins={
        "multiPoint": {"enabled": [{"name": n} for n in names], "disabled": [{"name": "*"}]},
        "preFilter": {"disabled": [{"name": "VolumeBinding"}, {"name": "InterPodAffinity"}]},
        "filter": {"disabled": [{"name": "VolumeBinding"}, {"name": "InterPodAffinity"},
                                {"name": "TaintToleration"}]},
        "score": {"disabled": [{"name": "VolumeBinding"}, {"name": "NodeResourcesFit"}]},
    })
    assert prof.plugins == expected_refs({
        "preEnqueue": ["SchedulingGates", "DefaultPreemption", "DynamicResources"],
        "queueSort": ["PrioritySort"],
        "preFilter": ["NodeResourcesFit", "NodePorts", "DynamicResources"],
        "filter": ["NodeResourcesFit", "NodePorts", "DynamicResources"],
        "postFilter": ["DefaultPreemption", "DynamicResources"],
        "preScore": ["VolumeBinding", "NodeResourcesFit", "InterPodAffinity", "TaintToleration"],
        "score": [("InterPodAffinity", 1), ("TaintToleration", 1), ("DynamicResources", 1)],
        "reserve": ["VolumeBinding", "DynamicResources"],
        "permit": [],
        "preBind": ["VolumeBinding", "DynamicResources"],
        "bind": ["DefaultBinder"],
        "postBind": [],
    })


def test_kube_scheduler_server_test_disable_all_filter_and_score_profile():
    points = ["preFilter", "filter", "postFilter", "preScore", "score"]
    cfg = parse(profiles=[
        {"schedulerName": "profile-default-plugins"},
        {"schedulerName": "profile-disable-all-filter-and-score-plugins",
         "plugins": {p: {"disabled": [{"name": "*"}]} for p in points}}])
    assert cfg.profile("profile-default-plugins").plugins == expected_refs(DEFAULT_LISTS)
    assert cfg.profile("profile-disable-all-filter-and-score-plugins").plugins == with_lists(
        **{p: [] for p in points})


def test_custom_plugin_in_multipoint_and_its_args(custom_plugins):
    prof = parse_profile(
        plugins={"multiPoint": {"enabled": [{"name": "ToyGpuShare", "weight": 5}]}},
        pluginConfig=[{"name": "ToyGpuShare", "args": {"slices": 8}}])
    assert prof.names("filter")[-1] == "ToyGpuShare"
    assert prof.names("preFilter")[-1] == "ToyGpuShare"
    assert prof.names("reserve") == ["VolumeBinding", "DynamicResources", "ToyGpuShare"]
    assert prof.plugins["score"][-1] == PluginRef("ToyGpuShare", 5)
    assert prof.args("ToyGpuShare") == custom_plugins(8)
    again = parse(profiles=[C.profile_to_dict(prof)]).profile()
    assert again == prof
    defaulted = parse_profile(plugins={"filter": {"enabled": [{"name": "ToyGpuShare"}]}})
    assert defaulted.args("ToyGpuShare") == custom_plugins(4)
    assert defaulted.names("filter")[-1] == "ToyGpuShare"
    assert "ToyGpuShare" not in defaulted.names("score")
    err = profile_error(pluginConfig=[{"name": "ToyGpuShare", "args": {"slices": 0}}])
    assert (err.field, err.message) == ("profiles[0].pluginConfig[0].args.slices",
                                        "must be a positive integer")


def test_args_for_plugins_without_args_type_are_kept_raw():
    prof = parse_profile(pluginConfig=[{"name": "TaintToleration", "args": {"x": 1}},
                                       {"name": "SomeOutOfTreePlugin", "args": {"y": [1]}}])
    assert prof.args("TaintToleration") == {"x": 1}
    assert prof.args("SomeOutOfTreePlugin") == {"y": [1]}


def test_plugin_config_for_a_disabled_plugin_is_validated_and_kept():
    prof = parse_profile(
        plugins={"multiPoint": {"disabled": [{"name": "NodeResourcesFit"}]}},
        pluginConfig=[{"name": "NodeResourcesFit",
                       "args": {"scoringStrategy": {"type": "MostAllocated"}}}])
    assert "NodeResourcesFit" not in prof.enabled_plugins()
    assert prof.args("NodeResourcesFit").scoring_strategy.type == "MostAllocated"
    err = error_of({"profiles": [{
        "plugins": {"multiPoint": {"disabled": [{"name": "NodeResourcesFit"}]}},
        "pluginConfig": [{"name": "NodeResourcesFit",
                          "args": {"scoringStrategy": {"type": "Nope"}}}]}]})
    assert err.field == "profiles[0].pluginConfig[0].args.scoringStrategy.type"


def test_selector_spread_is_registered_but_not_default():
    spec = C.plugin_spec("SelectorSpread")
    assert spec is not None and spec.extension_points == {ExtensionPoint.PRE_SCORE,
                                                          ExtensionPoint.SCORE}
    prof = parse_profile(plugins={"multiPoint": {"enabled": [{"name": "SelectorSpread",
                                                               "weight": 2}]}})
    assert prof.plugins["score"][-1] == PluginRef("SelectorSpread", 2)
    assert prof.names("preScore")[-1] == "SelectorSpread"


def test_negative_weights_are_accepted_as_kube_scheduler_does():
    prof = parse_profile(plugins={"score": {"enabled": [{"name": "ImageLocality",
                                                          "weight": -2}]}})
    assert prof.plugins["score"][0] == PluginRef("ImageLocality", -2)


def test_weights_and_percentages_must_fit_int32():
    err = profile_error(plugins={"score": {"enabled": [{"name": "ImageLocality",
                                                         "weight": 2**31}]}})
    assert err.field == "profiles[0].plugins.score.enabled[0].weight"
    assert "32-bit" in err.message


def test_total_score_overflow_check(monkeypatch):
    monkeypatch.setattr(C, "MAX_TOTAL_SCORE", 1000)   # defaults total 14 * 100
    err = error_of({})
    assert err.field == "profiles[0].plugins.score"
    assert "overflow" in err.message


# -- plugin errors --------------------------------------------------------------------------

def test_unknown_plugin_names_field_object_and_suggestion():
    err = profile_error(plugins={"score": {"enabled": [{"name": "ImageLocality"},
                                                       {"name": "NodeResourcesFitt"}]}})
    assert err.message == 'unknown plugin "NodeResourcesFitt" (did you mean "NodeResourcesFit"?)'
    assert err.field == "profiles[0].plugins.score.enabled[1].name"
    assert err.obj == "KubeSchedulerConfiguration/default-scheduler"
    assert err.file == "test.yaml"
    assert str(err) == ("test.yaml: KubeSchedulerConfiguration/default-scheduler: "
                        "profiles[0].plugins.score.enabled[1].name: " + err.message)


def test_unknown_plugin_in_multipoint():
    err = profile_error(plugins={"multiPoint": {"enabled": [{"name": "Bogus"}]}})
    assert err.message == 'unknown plugin "Bogus"'
    assert err.field == "profiles[0].plugins.multiPoint.enabled[0].name"


@pytest.mark.parametrize("name", sorted(C.REMOVED_PLUGINS))
def test_removed_plugins_are_invalid_in_v1(name):
    err = profile_error(plugins={"filter": {"enabled": [{"name": name}]}})
    assert err.field == "profiles[0].plugins.filter.enabled[0].name"
    assert err.message.startswith(f'plugin "{name}" was removed from kube-scheduler')
    assert "NodeVolumeLimits" in err.message
    err = profile_error(pluginConfig=[{"name": name, "args": {}}])
    assert err.field == "profiles[0].pluginConfig[0].name"


def test_plugin_at_an_extension_point_it_does_not_implement():
    err = profile_error(plugins={"filter": {"enabled": [{"name": "ImageLocality"}]}})
    assert err.message == ('plugin "ImageLocality" does not implement the filter extension '
                           "point (it implements: score)")
    assert err.field == "profiles[0].plugins.filter.enabled[0].name"


def test_duplicate_plugin_at_one_point():
    err = profile_error(plugins={"score": {"enabled": [{"name": "ImageLocality"},
                                                       {"name": "ImageLocality"}]}})
    assert err.message == ('plugin "ImageLocality" is enabled more than once at the score '
                           "extension point")
    assert err.field == "profiles[0].plugins.score.enabled[1].name"


def test_duplicate_plugin_in_multipoint():
    err = profile_error(plugins={"multiPoint": {"enabled": [{"name": "NodeResourcesFit"},
                                                            {"name": "NodeResourcesFit"}]}})
    assert err.message == 'plugin "NodeResourcesFit" is enabled more than once in multiPoint'
    assert err.field == "profiles[0].plugins.multiPoint.enabled[1].name"


def test_duplicate_in_multipoint_is_fine_where_a_specific_point_overrides_every_use():
    # Every extension point of ImageLocality (only score) lists it explicitly.
    prof = parse_profile(plugins={
        "multiPoint": {"enabled": [{"name": "ImageLocality"}, {"name": "ImageLocality"}]},
        "score": {"enabled": [{"name": "ImageLocality", "weight": 3}]}})
    assert prof.plugins["score"][0] == PluginRef("ImageLocality", 3)


def test_two_queue_sort_plugins(custom_plugins):
    err = profile_error(plugins={"multiPoint": {"enabled": [{"name": "FifoSort"}]}})
    assert err.message == ("exactly one queue sort plugin must be enabled, got 2 "
                           "(PrioritySort, FifoSort)")
    assert err.field == "profiles[0].plugins.queueSort"


def test_no_queue_sort_plugin():
    err = profile_error(plugins={"queueSort": {"disabled": [{"name": "*"}]}})
    assert err.message == "exactly one queue sort plugin must be enabled, got 0"


def test_queue_sort_replaced(custom_plugins):
    prof = parse_profile(plugins={"queueSort": {"disabled": [{"name": "*"}],
                                                "enabled": [{"name": "FifoSort"}]}})
    assert prof.queue_sort == "FifoSort"


def test_no_bind_plugin():
    err = profile_error(plugins={"multiPoint": {"disabled": [{"name": "DefaultBinder"}]}})
    assert err.message == "at least one bind plugin must be enabled"
    assert err.field == "profiles[0].plugins.bind"


def test_only_one_queue_sort_in_the_first_profile(custom_plugins):
    err = profile_error(plugins={"queueSort": {"enabled": [{"name": "FifoSort"},
                                                           {"name": "PrioritySort"}]}})
    assert err.message == "only one queue sort plugin can be enabled, got 2"
    assert err.field == "profiles[0].plugins.queueSort.enabled"


# -- profiles -------------------------------------------------------------------------------

def test_duplicate_scheduler_name():
    err = error_of({"profiles": [{"schedulerName": "a"}, {"schedulerName": "b"},
                                 {"schedulerName": "a"}]})
    assert err.message == "duplicate schedulerName 'a' (also profiles[0])"
    assert err.field == "profiles[2].schedulerName"
    assert err.obj == "KubeSchedulerConfiguration/a"


def test_scheduler_name_required_with_several_profiles():
    err = error_of({"profiles": [{"schedulerName": "a"}, {}]})
    assert err.field == "profiles[1].schedulerName"
    assert err.message.startswith("is required")
    err = error_of({"profiles": [{"schedulerName": ""}]})
    assert (err.field, err.message) == ("profiles[0].schedulerName", "must not be empty")


def test_queue_sort_config_must_match_across_profiles():
    err = error_of({"profiles": [
        {"schedulerName": "a", "plugins": {"queueSort": {
            "enabled": [{"name": "PrioritySort"}], "disabled": [{"name": "*"}]}}},
        {"schedulerName": "b"}]})
    assert err.message == "must be the same for all profiles (differs from profiles[0])"
    assert err.field == "profiles[1].plugins.queueSort"


def test_effective_queue_sort_must_match_across_profiles(custom_plugins):
    err = error_of({"profiles": [
        {"schedulerName": "a"},
        {"schedulerName": "b", "plugins": {"multiPoint": {
            "disabled": [{"name": "PrioritySort"}], "enabled": [{"name": "FifoSort"}]}}}]})
    assert err.field == "profiles[1].plugins.queueSort"
    assert "'FifoSort' differs from 'PrioritySort'" in err.message


def test_profile_percentage_overrides_global():
    cfg = parse(percentageOfNodesToScore=30,
                profiles=[{"schedulerName": "a"},
                          {"schedulerName": "b", "percentageOfNodesToScore": 0}])
    assert cfg.effective_percentage_of_nodes_to_score("a") == 30
    assert cfg.effective_percentage_of_nodes_to_score("b") == 0
    assert cfg.profile("b").percentage_of_nodes_to_score == 0
    assert cfg.profile().scheduler_name == "a"


# -- top-level fields -----------------------------------------------------------------------

@pytest.mark.parametrize("data, field, message", [
    ({"parallelism": 0}, "parallelism", "must be greater than zero, got 0"),
    ({"percentageOfNodesToScore": 101}, "percentageOfNodesToScore",
     "must be in the range [0, 100], got 101"),
    ({"profiles": [{"percentageOfNodesToScore": -1}]}, "profiles[0].percentageOfNodesToScore",
     "must be in the range [0, 100], got -1"),
    ({"podInitialBackoffSeconds": 0}, "podInitialBackoffSeconds",
     "must be greater than 0, got 0"),
    ({"podInitialBackoffSeconds": 5, "podMaxBackoffSeconds": 3}, "podMaxBackoffSeconds",
     "must be greater than or equal to podInitialBackoffSeconds (5), got 3"),
    ({"podInitialBackoffSeconds": 20}, "podMaxBackoffSeconds",
     "must be greater than or equal to podInitialBackoffSeconds (20), got 10"),
    ({"percentageOfNodeToScore": 5}, "percentageOfNodeToScore",
     'unknown field "percentageOfNodeToScore" (did you mean "percentageOfNodesToScore"?)'),
    ({"parallelism": True}, "parallelism", "must be an integer, got boolean true"),
    ({"parallelism": "16"}, "parallelism", "must be an integer, got string '16'"),
    ({"profiles": {"schedulerName": "x"}}, "profiles", "must be a list, got a mapping"),
    ({"profiles": [{"plugins": {"scor": {}}}]}, "profiles[0].plugins.scor",
     'unknown field "scor" (did you mean "score"?)'),
    ({"profiles": [{"plugins": {"score": {"enabled": [{"name": "X", "wieght": 1}]}}}]},
     "profiles[0].plugins.score.enabled[0].wieght",
     'unknown field "wieght" (did you mean "weight"?)'),
    ({"profiles": [{"plugins": {"score": {"enabled": [{"name": "ImageLocality",
                                                        "weight": "3"}]}}}]},
     "profiles[0].plugins.score.enabled[0].weight", "must be an integer, got string '3'"),
    ({"profiles": [{"plugins": {"score": {"enabled": [{"weight": 3}]}}}]},
     "profiles[0].plugins.score.enabled[0].name", "is required"),
    ({"profiles": [{"pluginConfig": [{"args": {}}]}]}, "profiles[0].pluginConfig[0].name",
     "is required"),
    ({"profiles": [{"pluginConfig": [{"name": "NodeAffinity"}, {"name": "NodeAffinity"}]}]},
     "profiles[0].pluginConfig[1].name",
     "duplicate pluginConfig for plugin 'NodeAffinity' (also pluginConfig[0])"),
    ({"leaderElection": {"leaderElect": True, "resourceLock": "endpoints"}},
     "leaderElection.resourceLock", "must be \"leases\", got 'endpoints'"),
    ({"leaderElection": {"leaseDuration": "5s"}}, "leaderElection.leaseDuration",
     "leaseDuration must be greater than renewDeadline"),
    ({"leaderElection": {"leaderElect": False, "resourceLock": "endpoints",
                         "lockName": "x"}}, "leaderElection.lockName",
     'unknown field "lockName" (did you mean "resourceName"?)'),
    ({"clientConnection": {"burst": -1}}, "clientConnection.burst",
     "must not be negative, got -1"),
    ({"extenders": [{"urlPrefix": "http://x", "prioritizeVerb": "prioritize"}]},
     "extenders[0].weight", "must be positive when prioritizeVerb is set, got 0"),
    ({"extenders": [{"urlPrefix": "http://a", "bindVerb": "bind"},
                    {"urlPrefix": "http://b", "bindVerb": "bind"}]}, "extenders",
     "only one extender can implement bind, found 2"),
    ({"extenders": [{"managedResources": [{"name": "cpu"}]}]},
     "extenders[0].managedResources[0].name", "'cpu' is not a valid extended resource name"),
])
def test_top_level_errors(data, field, message):
    err = error_of(data)
    assert (err.field, err.message) == (field, message)
    assert err.obj.startswith("KubeSchedulerConfiguration")


def test_accepted_and_ignored_fields_are_kept():
    cfg = parse(leaderElection={"leaderElect": False}, clientConnection={"qps": 100.5},
                enableProfiling=False, delayCacheUntilActive=True,
                extenders=[{"urlPrefix": "http://x", "filterVerb": "filter",
                            "managedResources": [{"name": "example.com/foo"}]}])
    assert cfg.leader_election == {"leaderElect": False}
    assert cfg.client_connection == {"qps": 100.5}
    assert (cfg.enable_profiling, cfg.delay_cache_until_active) == (False, True)
    assert cfg.extenders[0]["filterVerb"] == "filter"
    assert parse_scheduler_config(config_to_dict(cfg)) == cfg


@pytest.mark.parametrize("data, field, fragment", [
    ({"apiVersion": "kubescheduler.config.k8s.io/v1beta3", "kind": "KubeSchedulerConfiguration"},
     "apiVersion", "is not served by kube-scheduler v1.35"),
    ({"apiVersion": "kubescheduler.config.k8s.io/v1beta2", "kind": "KubeSchedulerConfiguration"},
     "apiVersion", "v1alpha*/v1beta* versions were removed"),
    ({"apiVersion": "v1", "kind": "KubeSchedulerConfiguration"}, "apiVersion",
     "unsupported apiVersion string 'v1'"),
    ({"kind": "KubeSchedulerConfiguration"}, "apiVersion", "is required"),
    ({"apiVersion": "kubescheduler.config.k8s.io/v1"}, "kind", "is required"),
    ({"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "Policy"}, "kind",
     "must be 'KubeSchedulerConfiguration', got string 'Policy'"),
])
def test_type_meta_errors(data, field, fragment):
    err = error_of(data, head=False)
    assert err.field == field
    assert fragment in err.message
    assert err.obj == "KubeSchedulerConfiguration"


def test_not_a_mapping():
    with pytest.raises(ConfigError, match="must be a mapping, got a list"):
        parse_scheduler_config([1, 2])


# -- plugin args ----------------------------------------------------------------------------

ARGS_ERRORS = [
    ("NodeResourcesFit", {"scoringStrategyy": {}}, "scoringStrategyy",
     'unknown field "scoringStrategyy" (did you mean "scoringStrategy"?)'),
    ("NodeResourcesFit", {"kind": "InterPodAffinityArgs"}, "kind",
     "args for this plugin must be of kind NodeResourcesFitArgs, got string "
     "'InterPodAffinityArgs'"),
    ("NodeResourcesFit", {"apiVersion": "kubescheduler.config.k8s.io/v1beta3"}, "apiVersion",
     "args must be kubescheduler.config.k8s.io/v1 NodeResourcesFitArgs, got apiVersion "
     "string 'kubescheduler.config.k8s.io/v1beta3'"),
    ("NodeResourcesFit", {"scoringStrategy": {"type": "Mostallocated"}}, "scoringStrategy.type",
     "unsupported scoring strategy 'Mostallocated'; supported: LeastAllocated, MostAllocated, "
     "RequestedToCapacityRatio"),
    ("NodeResourcesFit", {"scoringStrategy": {"resources": [{"name": "cpu"}]}},
     "scoringStrategy.type", "unsupported scoring strategy ''; supported: LeastAllocated, "
     "MostAllocated, RequestedToCapacityRatio"),
    ("NodeResourcesFit", {"scoringStrategy": {"type": "MostAllocated", "resources": [
        {"name": "cpu", "weight": 101}]}}, "scoringStrategy.resources[0].weight",
     "resource weight of cpu must be in the range (0, 100], got 101"),
    ("NodeResourcesFit", {"scoringStrategy": {"type": "MostAllocated", "resources": [
        {"name": "cpu"}, {"name": "memory", "weight": -1}]}},
     "scoringStrategy.resources[1].weight",
     "resource weight of memory must be in the range (0, 100], got -1"),
    ("NodeResourcesFit", {"scoringStrategy": {"type": "RequestedToCapacityRatio"}},
     "scoringStrategy.requestedToCapacityRatio",
     "is required by the RequestedToCapacityRatio scoring strategy"),
    ("NodeResourcesFit", {"scoringStrategy": {"type": "RequestedToCapacityRatio",
                                              "requestedToCapacityRatio": {"shape": []}}},
     "scoringStrategy.requestedToCapacityRatio.shape", "at least one point must be specified"),
    ("NodeResourcesFit", {"scoringStrategy": {"type": "RequestedToCapacityRatio",
                                              "requestedToCapacityRatio": {"shape": [
                                                  {"utilization": 50, "score": 1},
                                                  {"utilization": 50, "score": 2}]}}},
     "scoringStrategy.requestedToCapacityRatio.shape[1].utilization",
     "utilization values must be sorted in increasing order (50 then 50)"),
    ("NodeResourcesFit", {"scoringStrategy": {"type": "RequestedToCapacityRatio",
                                              "requestedToCapacityRatio": {"shape": [
                                                  {"utilization": 0, "score": 0},
                                                  {"utilization": 101, "score": 2}]}}},
     "scoringStrategy.requestedToCapacityRatio.shape[1].utilization",
     "must be in the range [0, 100], got 101"),
    ("NodeResourcesFit", {"scoringStrategy": {"type": "RequestedToCapacityRatio",
                                              "requestedToCapacityRatio": {"shape": [
                                                  {"utilization": 0, "score": 11}]}}},
     "scoringStrategy.requestedToCapacityRatio.shape[0].score",
     "must be in the range [0, 10], got 11"),
    ("NodeResourcesFit", {"ignoredResourceGroups": ["example.com/gpu"]},
     "ignoredResourceGroups[0]", "resource group name 'example.com/gpu' can't contain '/'"),
    ("NodeResourcesFit", {"ignoredResources": ["-bad"]}, "ignoredResources[0]",
     "invalid name '-bad': name part must consist of alphanumeric characters, '-', '_' or '.', "
     "and must start and end with an alphanumeric character"),
    ("NodeResourcesBalancedAllocation", {"resources": [{"name": "cpu", "weight": 2}]},
     "resources[0].weight", "must be 1, got 2"),
    ("NodeResourcesBalancedAllocation", {"resources": [{"name": "cpu"}, {"name": "cpu"}]},
     "resources[1].name", "duplicate resource 'cpu'"),
    ("PodTopologySpread", {"defaultConstraints": [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]},
     "defaultingType", 'must be "List" when defaultConstraints are not empty'),
    ("PodTopologySpread", {"defaultingType": "Lists"}, "defaultingType",
     "unsupported value 'Lists'; supported: \"System\", \"List\""),
    ("PodTopologySpread", {"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]},
     "defaultConstraints[0].maxSkew", "must be greater than zero, got 0"),
    ("PodTopologySpread", {"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]},
     "defaultConstraints[0].topologyKey", "is required"),
    ("PodTopologySpread", {"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Maybe"}]},
     "defaultConstraints[0].whenUnsatisfiable",
     "unsupported value 'Maybe'; supported: \"DoNotSchedule\", \"ScheduleAnyway\""),
    ("PodTopologySpread", {"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"a": "b"}}}]},
     "defaultConstraints[0].labelSelector",
     "must not be set: default constraints cannot define a selector, it is deduced for each pod"),
    ("PodTopologySpread", {"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
        {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]},
     "defaultConstraints[1]",
     "duplicate constraint {zone, DoNotSchedule} (also defaultConstraints[0])"),
    ("InterPodAffinity", {"hardPodAffinityWeight": 101}, "hardPodAffinityWeight",
     "must be in the range [0, 100], got 101"),
    ("InterPodAffinity", {"ignorePreferredTermsOfExistingPods": "yes"},
     "ignorePreferredTermsOfExistingPods", "must be a boolean, got string 'yes'"),
    ("DefaultPreemption", {"minCandidateNodesPercentage": 101}, "minCandidateNodesPercentage",
     "must be in the range [0, 100], got 101"),
    ("DefaultPreemption", {"minCandidateNodesAbsolute": -1}, "minCandidateNodesAbsolute",
     "must not be negative, got -1"),
    ("DefaultPreemption", {"minCandidateNodesPercentage": 0, "minCandidateNodesAbsolute": 0},
     "minCandidateNodesPercentage",
     "cannot be zero at the same time as minCandidateNodesAbsolute"),
    ("VolumeBinding", {"bindTimeoutSeconds": -1}, "bindTimeoutSeconds",
     "must not be negative, got -1"),
    ("VolumeBinding", {"shape": [{"utilization": 0, "score": 10}]}, "shape",
     "unexpected field: shape needs the StorageCapacityScoring feature gate, which is off in "
     "kube-scheduler v1.35"),
    ("DynamicResources", {"filterTimeout": "-1s"}, "filterTimeout",
     "must be zero or positive, got -1s"),
    ("DynamicResources", {"filterTimeout": "ten seconds"}, "filterTimeout",
     "invalid duration 'ten seconds' (expected e.g. \"10s\", \"1m30s\", \"500ms\")"),
    ("DynamicResources", {"filterTimeout": 10}, "filterTimeout",
     'must be a duration string such as "10s", got integer 10'),
    ("DynamicResources", {"bindingTimeout": "1m"}, "bindingTimeout",
     "must not be set: it needs the DRADeviceBindingConditions feature gate, which is off in "
     "kube-scheduler v1.35"),
    ("NodeAffinity", {"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "Near", "values": ["a"]}]}]}}},
     "addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
     ".matchExpressions[0].operator",
     "unsupported operator 'Near'; supported: In, NotIn, Exists, DoesNotExist, Gt, Lt"),
    ("NodeAffinity", {"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "Exists", "values": ["a"]}]}]}}},
     "addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
     ".matchExpressions[0].values", "values must be empty for operator Exists"),
    ("NodeAffinity", {"addedAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [
            {"key": "cores", "operator": "Gt", "values": ["many"]}]}}]}},
     "addedAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference"
     ".matchExpressions[0].values[0]",
     "the value for operator Gt must be an integer, got 'many'"),
    ("NodeAffinity", {"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.labels", "operator": "In", "values": ["a"]}]}]}}},
     "addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
     ".matchFields[0].key",
     "'metadata.labels' is not a valid field selector key (only \"metadata.name\")"),
    ("NodeAffinity", [1], "", "must be a mapping, got a list"),
]


@pytest.mark.parametrize("name, args, field, message", ARGS_ERRORS)
def test_plugin_args_errors(name, args, field, message):
    err = args_error(name, args)
    assert err.field == "profiles[0].pluginConfig[0].args" + ("." + field if field else "")
    assert err.message == message
    assert err.obj == "KubeSchedulerConfiguration"


def test_node_resources_fit_args_defaulting():
    args = parse_profile(pluginConfig=[{"name": "NodeResourcesFit", "args": {
        "ignoredResources": ["example.com/foo"],
        "scoringStrategy": {"type": "MostAllocated",
                            "resources": [{"name": "cpu", "weight": 0}, {"name": "memory",
                                                                         "weight": 3}]}}}]
                         ).args("NodeResourcesFit")
    assert args.ignored_resources == ("example.com/foo",)
    assert args.scoring_strategy.resources == (ResourceSpec("cpu", 1), ResourceSpec("memory", 3))
    empty = NodeResourcesFitArgs.from_dict({"scoringStrategy": {"type": "MostAllocated"}})
    assert empty.scoring_strategy.resources == (ResourceSpec("cpu", 1),
                                                ResourceSpec("memory", 1))


def test_balanced_allocation_weight_zero_defaults_to_one():
    args = NodeResourcesBalancedAllocationArgs.from_dict(
        {"resources": [{"name": "cpu", "weight": 0}, {"name": "nvidia.com/gpu"}]})
    assert args.resources == (ResourceSpec("cpu", 1), ResourceSpec("nvidia.com/gpu", 1))


def test_pod_topology_spread_list_defaulting():
    args = PodTopologySpreadArgs.from_dict({"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone",
         "whenUnsatisfiable": "DoNotSchedule", "minDomains": 3}]})
    assert args.effective_default_constraints == (
        TopologySpreadDefault(2, "topology.kubernetes.io/zone", "DoNotSchedule", 3),)
    assert PodTopologySpreadArgs.from_dict({"defaultingType": "List"}
                                           ).effective_default_constraints == ()


def test_small_args_defaults():
    assert InterPodAffinityArgs.from_dict({"hardPodAffinityWeight": 0}
                                          ).hard_pod_affinity_weight == 0
    assert InterPodAffinityArgs.from_dict({}).hard_pod_affinity_weight == 1
    assert DefaultPreemptionArgs.from_dict({"minCandidateNodesAbsolute": 0}) == \
        DefaultPreemptionArgs(10, 0)
    assert VolumeBindingArgs.from_dict({"bindTimeoutSeconds": 0}).bind_timeout_seconds == 0
    assert DynamicResourcesArgs.from_dict({"filterTimeout": "1m30s"}).filter_timeout_ns == \
        90 * 10**9
    assert DynamicResourcesArgs.from_dict({"filterTimeout": "0"}).filter_timeout_ns == 0


def test_node_affinity_added_affinity_is_kept():
    added = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "node-role.kubernetes.io/worker",
                               "operator": "Exists"}],
         "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}]}}
    prof = parse_profile(pluginConfig=[{"name": "NodeAffinity", "args": {
        "addedAffinity": added}}])
    assert prof.args("NodeAffinity").added_affinity == added


# -- real-world files -----------------------------------------------------------------------

def test_most_allocated_file():
    cfg = load_scheduler_config(DATA / "most-allocated.yaml")
    assert cfg.source.endswith("most-allocated.yaml")
    prof = cfg.profile()
    strategy = prof.args("NodeResourcesFit").scoring_strategy
    assert strategy.type == "MostAllocated"
    assert strategy.resources == (ResourceSpec("nvidia.com/gpu", 10), ResourceSpec("cpu", 1),
                                  ResourceSpec("memory", 1))
    assert prof.plugins == expected_refs(DEFAULT_LISTS)
    assert cfg.leader_election == {"leaderElect": False}


def test_requested_to_capacity_ratio_file():
    prof = load_scheduler_config(DATA / "requested-to-capacity-ratio.yaml").profile()
    strategy = prof.args("NodeResourcesFit").scoring_strategy
    assert strategy.type == "RequestedToCapacityRatio"
    assert strategy.resources == (ResourceSpec("cpu", 1), ResourceSpec("memory", 2))
    assert strategy.requested_to_capacity_ratio.shape == (
        UtilizationShapePoint(0, 0), UtilizationShapePoint(80, 10), UtilizationShapePoint(100, 2))
    assert prof.plugins["score"][0] == PluginRef("NodeResourcesFit", 5)
    assert prof.names("score").count("NodeResourcesFit") == 1


def test_two_profiles_file():
    cfg = load_scheduler_config(DATA / "two-profiles.yaml")
    assert [p.scheduler_name for p in cfg.profiles] == ["default-scheduler", "bin-packing"]
    assert (cfg.pod_initial_backoff_seconds, cfg.pod_max_backoff_seconds) == (2, 20)
    assert cfg.profile("default-scheduler").plugins == expected_refs(DEFAULT_LISTS)
    assert cfg.effective_percentage_of_nodes_to_score("default-scheduler") == 50
    assert cfg.effective_percentage_of_nodes_to_score("bin-packing") == 10
    bp = cfg.profile("bin-packing")
    assert all("PodTopologySpread" not in bp.names(p) for p in EXTENSION_POINTS)
    assert "PodTopologySpread" not in bp.plugin_args
    assert bp.names("score") == ["TaintToleration", "NodeAffinity", "NodeResourcesFit",
                                 "VolumeBinding", "InterPodAffinity", "DynamicResources"]
    fit = bp.args("NodeResourcesFit")
    assert fit.ignored_resource_groups == ("example.com",)
    assert fit.scoring_strategy.type == "MostAllocated"
    assert cfg.profile().args("NodeResourcesFit").scoring_strategy.type == "LeastAllocated"


def test_profile_to_dict_lists_effective_plugins_explicitly():
    d = C.profile_to_dict(default_configuration().profile())
    assert d["plugins"]["multiPoint"] == {"disabled": [{"name": "*"}]}
    assert d["plugins"]["score"]["enabled"][0] == {"name": "TaintToleration", "weight": 3}
    assert d["plugins"]["bind"] == {"enabled": [{"name": "DefaultBinder"}]}
    assert "permit" not in d["plugins"]
    assert {"name": "DynamicResources", "args": {"filterTimeout": "10s"}} in d["pluginConfig"]


@pytest.mark.parametrize("path", sorted(DATA.glob("*.yaml")), ids=lambda p: p.name)
def test_example_files_round_trip(path):
    cfg = load_scheduler_config(path)
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    assert parse_scheduler_config(yaml.safe_load(text), source=str(path)) == cfg


def test_yaml_errors(tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
                 "profiles:\n- schedulerName: a\n  schedulerName: b\n")
    with pytest.raises(ConfigError) as info:
        load_scheduler_config(f)
    assert info.value.message == 'duplicate key "schedulerName" at line 5'
    assert info.value.file == str(f)
    f.write_text("profiles: [\n")
    with pytest.raises(ConfigError, match="invalid YAML at line"):
        load_scheduler_config(f)
    f.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_scheduler_config(f)
    f.write_text("a: 1\n---\nb: 2\n")
    with pytest.raises(ConfigError, match="expected one YAML document, found 2"):
        load_scheduler_config(f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_scheduler_config(tmp_path / "missing.yaml")


def test_json_file_is_accepted(tmp_path):
    f = tmp_path / "cfg.json"
    f.write_text('{"apiVersion": "kubescheduler.config.k8s.io/v1", '
                 '"kind": "KubeSchedulerConfiguration", "parallelism": 4}')
    assert load_scheduler_config(f).parallelism == 4


# -- registry -------------------------------------------------------------------------------

def test_in_tree_registry_extension_points():
    spec = C.plugin_spec("NodeResourcesFit")
    assert spec.builtin and spec.args_type is NodeResourcesFitArgs
    assert spec.extension_points == {ExtensionPoint.PRE_FILTER, ExtensionPoint.FILTER,
                                     ExtensionPoint.PRE_SCORE, ExtensionPoint.SCORE}
    assert C.plugin_spec("DefaultPreemption").implements("PreEnqueue")
    assert C.plugin_spec("DynamicResources").implements("score")
    assert not C.plugin_spec("NodeName").implements(ExtensionPoint.PRE_FILTER)
    assert C.plugin_spec("EBSLimits") is None
    with_args = {n for n, s in C.registered_plugins().items() if s.args_type is not None}
    assert with_args == {"DefaultPreemption", "DynamicResources", "InterPodAffinity",
                         "NodeAffinity", "NodeResourcesBalancedAllocation", "NodeResourcesFit",
                         "PodTopologySpread", "VolumeBinding"}


def test_register_plugin_api_errors(custom_plugins):
    with pytest.raises(ValueError, match="already registered"):
        register_plugin("ToyGpuShare", ["Filter"])
    with pytest.raises(ValueError, match="unknown extension point"):
        register_plugin("Other", ["Filtre"])
    with pytest.raises(ValueError, match="removed"):
        register_plugin("EBSLimits", ["Filter"])
    with pytest.raises(ValueError, match="at least one"):
        register_plugin("Other", [])
    with pytest.raises(TypeError, match="from_dict"):
        register_plugin("Other", ["Filter"], args_type=dict)
    with pytest.raises(ValueError, match="in-tree"):
        unregister_plugin("NodeName")
    with pytest.raises(ValueError, match="in-tree"):
        register_plugin("NodeName", ["Filter", "Score"], replace=True)
    spec = register_plugin("ToyGpuShare", ["filter"], replace=True)
    assert spec.extension_points == {ExtensionPoint.FILTER}
    assert C.plugin_spec("Other") is None


# -- durations ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, ns", [("10s", 10**10), ("1m30s", 90 * 10**9),
                                      ("1.5h", 5400 * 10**9), ("500ms", 5 * 10**8),
                                      ("0", 0), ("-2us", -2000),
                                      (".5s", 5 * 10**8), ("1h1ns", 3600 * 10**9 + 1)])
def test_parse_go_duration(text, ns):
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize("text", ["", "10", "s", "1d", "1.5", "--1s", "1s ", "+"])
def test_parse_go_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_go_duration(text)


@given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1))
def test_go_duration_round_trip(ns):
    assert parse_go_duration(format_go_duration(ns)) == ns


# -- round trip property --------------------------------------------------------------------

_DEFAULT_NAMES = [n for n, _ in C.DEFAULT_MULTIPOINT if n not in ("PrioritySort", "DefaultBinder")]
_SCORE_PLUGINS = sorted(n for n, s in C.registered_plugins().items()
                        if s.builtin and s.implements("score"))
_FILTER_PLUGINS = sorted(n for n, s in C.registered_plugins().items()
                         if s.builtin and s.implements("filter"))
_weight = st.one_of(st.none(), st.integers(0, 100))


def _plugin_list(names, with_weight=False, max_size=4):
    entry = (st.tuples(st.sampled_from(names), _weight) if with_weight
             else st.tuples(st.sampled_from(names), st.none()))
    return st.lists(entry, max_size=max_size, unique_by=lambda e: e[0]).map(
        lambda es: [{"name": n} if w is None else {"name": n, "weight": w} for n, w in es])


@st.composite
def _plugin_set(draw, names, with_weight=False, required=()):
    """A PluginSet; when it disables '*', the ``required`` plugins are re-enabled first."""
    out = {}
    enabled = draw(_plugin_list(names, with_weight)) if draw(st.booleans()) else []
    disabled = draw(st.one_of(st.just([]), st.just(["*"]),
                              st.lists(st.sampled_from(_DEFAULT_NAMES), max_size=3, unique=True)))
    if disabled == ["*"] and required:
        enabled = [{"name": n} for n in required] + enabled
    if enabled:
        out["enabled"] = enabled
    if disabled:
        out["disabled"] = [{"name": n} for n in disabled]
    return out


@st.composite
def _fit_args(draw):
    kind = draw(st.sampled_from(C.SCORING_STRATEGY_TYPES))
    strategy = {"type": kind}
    if draw(st.booleans()):
        strategy["resources"] = [
            {"name": n, "weight": w} for n, w in draw(st.lists(
                st.tuples(st.sampled_from(["cpu", "memory", "nvidia.com/gpu"]),
                          st.integers(0, 100)), min_size=1, max_size=3,
                unique_by=lambda t: t[0]))]
    if kind == "RequestedToCapacityRatio" or draw(st.booleans()):
        xs = draw(st.lists(st.integers(0, 100), min_size=1, max_size=4, unique=True))
        strategy["requestedToCapacityRatio"] = {"shape": [
            {"utilization": x, "score": draw(st.integers(0, 10))} for x in sorted(xs)]}
    return {"scoringStrategy": strategy}


@st.composite
def _profile(draw, name):
    prof = {"schedulerName": name}
    if draw(st.booleans()):
        prof["percentageOfNodesToScore"] = draw(st.integers(0, 100))
    plugins = {}
    if draw(st.booleans()):
        plugins["multiPoint"] = draw(_plugin_set(_SCORE_PLUGINS + ["NodeName"], True,
                                                 required=("PrioritySort", "DefaultBinder")))
    if draw(st.booleans()):
        plugins["score"] = draw(_plugin_set(_SCORE_PLUGINS, True))
    if draw(st.booleans()):
        plugins["filter"] = draw(_plugin_set(_FILTER_PLUGINS))
    if draw(st.booleans()):
        plugins["preScore"] = {"disabled": [{"name": "*"}]}
    if plugins:
        prof["plugins"] = plugins
    config = []
    if draw(st.booleans()):
        config.append({"name": "NodeResourcesFit", "args": draw(_fit_args())})
    if draw(st.booleans()):
        config.append({"name": "InterPodAffinity",
                       "args": {"hardPodAffinityWeight": draw(st.integers(0, 100))}})
    if draw(st.booleans()):
        config.append({"name": "DynamicResources",
                       "args": {"filterTimeout": draw(st.sampled_from(["0", "1s", "2m",
                                                                       "150ms"]))}})
    if draw(st.booleans()):
        config.append({"name": "PodTopologySpread", "args": {
            "defaultingType": "List", "defaultConstraints": [
                {"maxSkew": draw(st.integers(1, 5)), "topologyKey": "kubernetes.io/hostname",
                 "whenUnsatisfiable": draw(st.sampled_from(["DoNotSchedule",
                                                            "ScheduleAnyway"]))}]}})
    if config:
        prof["pluginConfig"] = draw(st.permutations(config))
    return prof


@st.composite
def _configurations(draw):
    names = draw(st.lists(st.sampled_from(["default-scheduler", "a", "b", "gpu"]),
                          min_size=1, max_size=3, unique=True))
    data = {**HEAD, "profiles": [draw(_profile(n)) for n in names]}
    if draw(st.booleans()):
        data["percentageOfNodesToScore"] = draw(st.integers(0, 100))
    if draw(st.booleans()):
        initial = draw(st.integers(1, 30))
        data["podInitialBackoffSeconds"] = initial
        data["podMaxBackoffSeconds"] = draw(st.integers(initial, 600))
    return data


@given(_configurations())
def test_round_trip_property(data):
    cfg = parse_scheduler_config(data)
    for prof in cfg.profiles:
        for point in EXTENSION_POINTS:
            names = prof.names(point)
            assert len(names) == len(set(names))
            assert all(C.plugin_spec(n).implements(point) for n in names)
        assert all(ref.weight >= 1 for ref in prof.plugins["score"])
        assert all(ref.weight == 0 for p in EXTENSION_POINTS if p != "score"
                   for ref in prof.plugins[p])
        assert prof.queue_sort == "PrioritySort" and prof.names("bind") == ["DefaultBinder"]
    assert parse_scheduler_config(config_to_dict(cfg)) == cfg
    text = yaml.safe_dump(config_to_dict(cfg))
    assert parse_scheduler_config(yaml.safe_load(text)) == cfg
