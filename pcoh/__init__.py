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
import os as _os


def _numba_cache() -> None:
    """Give numba's cache of compiled kernels a writable folder, so that ``import pcoh`` works on a
    read-only install with an unwritable home folder too.

    numba writes beside the sources (``pcoh/__pycache__``) or, failing that, in the user's cache
    folder (``~/.cache/numba``); with neither writable it refuses to define the kernels. Then (and
    only when ``NUMBA_CACHE_DIR`` is not set) the cache goes to ``<temp folder>/pcoh-numba-<user>``.
    """
    import tempfile

    def writable(folder: str) -> bool:
        try:
            _os.makedirs(folder, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
            return True
        except OSError:
            return False

    if _os.environ.get("NUMBA_CACHE_DIR"):
        return
    if writable(_os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "__pycache__")):
        return
    from numba.core import config
    from numba.misc.appdirs import user_cache_dir

    if writable(user_cache_dir(appname="numba", appauthor=False)):
        return
    user = getattr(_os, "getuid", lambda: "user")()
    folder = _os.path.join(tempfile.gettempdir(), f"pcoh-numba-{user}")
    _os.environ["NUMBA_CACHE_DIR"] = folder
    config.CACHE_DIR = folder  # numba reads its environment once, at import


_numba_cache()

# OpenMP threads that wait for work spin a short while, then sleep (GNU OpenMP's spin count, 10,000
# rather than 300,000): two processes on the same cores then do not burn each other's time, and a
# process alone loses nothing measurable (benchmarks/bench_threads.py). Torch's OpenMP runtime reads
# it once, when torch is first imported; a wait policy or spin count the user set wins.
if "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from . import coherence, data, diagnostics, dissimilarity, evaluate, losses, methods, models, ranking  # noqa: E402
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
from .train import StopTraining, StudentSpec, TeacherSpec, TrainConfig, train_student, train_teacher

__version__ = "0.1.0"

__all__ = [
    "PerceptionCoherenceLoss",
    "RNXCurve",
    "StopTraining",
    "StudentSpec",
    "TeacherSpec",
    "TrainConfig",
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
    "train_student",
    "train_teacher",
]
