"""GPU sharing for the FGD paper's policies (``atc23-*``): per-GPU state arrays, typical pods
and fragmentation, node-level policy kernels, the fill experiment and a fast event replay.

Public API (shared with the kube engine and plugins):

- :class:`TypicalPods`, :func:`typical_pods`, :func:`node_fragmentation`,
  :func:`fragmentation_summary`
- :data:`ATC23_POLICIES`, :func:`score_node` and the per-policy node kernels
  (:func:`dotprod_score`, :func:`clustering_score`, :func:`packing_score`,
  :func:`bestfit_raw_score` + :func:`normalize_scores`, FGD through :func:`score_node`)
- :func:`prepare_fill` / :class:`FillPlan`, :func:`fill_experiment`, :func:`replay_fast`
"""

from .fill import FillPlan, fill_experiment, prepare_fill, run_fill
from .frag import TypicalPods, fragmentation_summary, node_fragmentation, typical_pods
from .policies import (ATC23_POLICIES, bestfit_raw_score, choose_gpus, clustering_score,
                       dotprod_score, fgd_score, normalize_scores, packing_score, policy_id,
                       pod_tag, score_node, score_nodes)
from .replay import replay_fast
from .state import ClusterArrays, PodArrays, cluster_arrays, model_names_of, pod_arrays

__all__ = ["ATC23_POLICIES", "ClusterArrays", "FillPlan", "PodArrays", "TypicalPods",
           "bestfit_raw_score", "choose_gpus", "cluster_arrays", "clustering_score",
           "dotprod_score", "fgd_score",
           "fill_experiment", "fragmentation_summary", "model_names_of", "node_fragmentation",
           "normalize_scores", "packing_score", "pod_arrays", "pod_tag", "policy_id",
           "prepare_fill", "replay_fast", "run_fill", "score_node", "score_nodes", "typical_pods"]
