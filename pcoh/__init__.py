"""pcoh: perception coherence.

Transfer a teacher network's representation to a lightweight student by making the student rank
dissimilarities between inputs the way the teacher does, instead of copying the teacher's
geometry (see ``docs/method.md`` and the README).

Modules: :mod:`pcoh.ranking` (soft and hard ranks), :mod:`pcoh.dissimilarity` (metrics),
:mod:`pcoh.losses` (the PC loss and the baselines), :mod:`pcoh.coherence` (measures),
:mod:`pcoh.coranking` (co-ranking matrix, R_NX curves),
:mod:`pcoh.diagnostics` (the probabilistic form examined), :mod:`pcoh.methods` (the method registry),
:mod:`pcoh.models`, :mod:`pcoh.data`, :mod:`pcoh.train`, :mod:`pcoh.evaluate`,
:mod:`pcoh.experiment` (the main job), :mod:`pcoh.plots`, :mod:`pcoh.notebook`.
"""
from . import coherence, coranking, data, diagnostics, dissimilarity, evaluate, losses, methods, models, ranking
from .coherence import (
    bootstrap_ci,
    concordance_probability,
    global_spearman,
    neighbor_overlap,
    per_reference_kendall,
    per_reference_spearman,
    perception_coherence,
    probabilistic_ranks,
)
from .coranking import RNXCurve, coranking_matrix, qnx_per_point, rnx_auc, rnx_curve
from .dissimilarity import pairwise
from .losses import PerceptionCoherenceLoss, TransferLoss
from .ranking import rank, soft_rank

__version__ = "0.1.0"

__all__ = [
    "PerceptionCoherenceLoss",
    "RNXCurve",
    "TransferLoss",
    "bootstrap_ci",
    "coherence",
    "concordance_probability",
    "coranking",
    "coranking_matrix",
    "data",
    "diagnostics",
    "dissimilarity",
    "evaluate",
    "global_spearman",
    "losses",
    "methods",
    "models",
    "neighbor_overlap",
    "pairwise",
    "per_reference_kendall",
    "per_reference_spearman",
    "perception_coherence",
    "probabilistic_ranks",
    "qnx_per_point",
    "rank",
    "ranking",
    "rnx_auc",
    "rnx_curve",
    "soft_rank",
]
