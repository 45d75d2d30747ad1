"""pcoh: perception coherence.

Transfer a teacher network's representation to a lightweight student by making the student rank
dissimilarities between inputs the way the teacher does, instead of copying the teacher's
geometry (see ``docs/method.md`` and the README).

Modules: :mod:`pcoh.ranking` (soft and hard ranks), :mod:`pcoh.dissimilarity` (metrics),
:mod:`pcoh.losses` (the PC loss and the baselines), :mod:`pcoh.coherence` (measures),
:mod:`pcoh.diagnostics` (the probabilistic form examined), :mod:`pcoh.methods` (the method registry),
:mod:`pcoh.models`, :mod:`pcoh.data`, :mod:`pcoh.train`, :mod:`pcoh.evaluate`,
:mod:`pcoh.experiment` (the main job), :mod:`pcoh.plots`, :mod:`pcoh.notebook`.
"""
from . import coherence, data, diagnostics, dissimilarity, evaluate, losses, methods, models, ranking
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
from .dissimilarity import pairwise
from .losses import PerceptionCoherenceLoss, TransferLoss
from .ranking import rank, soft_rank
from .train import StopTraining, StudentSpec, TeacherSpec, TrainConfig, train_student, train_teacher

__version__ = "0.1.0"

__all__ = [
    "PerceptionCoherenceLoss",
    "StopTraining",
    "StudentSpec",
    "TeacherSpec",
    "TrainConfig",
    "TransferLoss",
    "bootstrap_ci",
    "coherence",
    "concordance_probability",
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
    "rank",
    "ranking",
    "soft_rank",
    "train_student",
    "train_teacher",
]
