r"""Transfer losses behind one interface: perception coherence and the distillation baselines.

Every loss is a :class:`TransferLoss` (an ``nn.Module``) called the same way,
``loss(student, teacher) -> scalar``, where ``student`` and ``teacher`` are either feature
tensors of shape (n, d_S) and (n, d_T), or model outputs with ``features`` and ``logits``
attributes (:class:`pcoh.models.ModelOutput`); each loss picks what it uses (``uses``). The
teacher side never receives a gradient. Losses are looked up by name with :func:`get`, so a
training loop swaps methods without special cases.

============  ==============================================  ============================  ======================
name          loss                                            paper                         default weight
============  ==============================================  ============================  ======================
``"pc"``      perception coherence, docs/method.md §3         this project                  1
``"fitnet"``  MSE of a learned linear regressor (hint)        Romero et al. 2015            100
``"rkd"``     relational KD: distance + angle, smooth L1      Park et al. 2019              1 (w_d 25, w_a 50)
``"pkt"``     KL of cosine-similarity conditional probs       Passalis & Tefas 2018         30000
``"sp"``      similarity preserving: row-normalised Grams     Tung & Mori 2019              3000
``"cc"``      correlation congruence, Gaussian-kernel Taylor  Peng et al. 2019              0.02
``"kd"``      KL of temperature-T softmax logits (T = 4)      Hinton et al. 2015            0.9 (CE 0.1)
``"crd"``     NCE contrast against a memory of every sample   Tian et al. 2020              0.8
``"rrd"``     similarities to a queue of teacher projections  Giakoumoglou & Stathaki 2024  1
``"dist"``    Pearson of softened logits, rows and columns    Huang et al. 2022             1 (beta, gamma 2, T 4)
============  ==============================================  ============================  ======================

The methods built on these losses (what each student matches, its modes) are tabulated by
:func:`pcoh.methods.table`; a test checks that this table names the same losses and papers.

The default weight is the multiplier of the loss in the class-aware objective
``ce_weight * CE + weight * loss``; ``ce_weight`` is 1 except for KD (0.1). Weights are those of
the CIFAR-100 distillation benchmark of Tian et al. 2020 (CRD / RepDistiller); RRD and DIST came
later: RRD's weight is 1 and DIST's settings are its CIFAR-100 ones (see their Notes). The baselines act on
pooled penultimate features (``uses = "features"``) except KD and DIST (logits); the differences from
the reference implementations are listed in each class's Notes.

Modules: :mod:`pcoh.losses.base` (the interface, its checks, the global batch under torchrun),
:mod:`pcoh.losses.pc` (the PC loss), :mod:`pcoh.losses.baselines` (FitNet, RKD, PKT, SP, CC, KD),
:mod:`pcoh.losses.crd` (CRD), :mod:`pcoh.losses.rrd` (RRD), :mod:`pcoh.losses.dist` (DIST),
:mod:`pcoh.losses.registry` (the losses by name).
"""
from .base import TransferLoss, off_diagonal
from .baselines import CCLoss, FitNetLoss, KDLoss, PKTLoss, RKDLoss, SPLoss
from .crd import CRDLoss
from .dist import DISTLoss
from .pc import FOCUS_KINDS, PerceptionCoherenceLoss
from .rrd import RRDLoss
from .registry import LOSSES, arguments, available, get

__all__ = [
    "TransferLoss",
    "PerceptionCoherenceLoss",
    "FitNetLoss",
    "RKDLoss",
    "PKTLoss",
    "SPLoss",
    "CCLoss",
    "KDLoss",
    "CRDLoss",
    "RRDLoss",
    "DISTLoss",
    "LOSSES",
    "get",
    "available",
    "arguments",
    "off_diagonal",
    "FOCUS_KINDS",
]
