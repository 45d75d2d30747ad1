"""The training objectives (``docs/method.md`` §3), each ``objective(net, x, y, idx) -> dict of loss
terms`` with the total as ``"loss"``:

- teacher: cross-entropy;
- student, ``mode="class-unaware"``: ``weight * L_transfer(student, teacher)``, no label used;
- student, ``mode="class-aware"``: ``ce_weight * CE(y, logits) + weight * L_transfer``; KD is
  class-aware only; method ``"ce"`` trains on labels alone (no teacher).

The weights come from the run's :class:`pcoh.specs.LossSettings`, so no objective special-cases a method.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.utils.data import Dataset

from . import models as _models
from .batches import BatchSource
from .methods import CLASS_AWARE
from .prediction import predict
from .specs import StudentSpec

def teacher_objective():
    """``objective(net, x, y, idx)`` of a teacher run: the cross-entropy, as ``loss`` and ``ce``."""
    ce = nn.CrossEntropyLoss()

    def objective(net, x, y, idx):
        loss = ce(net(x).logits, y)
        return {"loss": loss, "ce": loss}

    return objective


def _teacher_outputs(dataset: Dataset, teacher: nn.Module, device) -> Optional[tuple]:
    """For in-memory data without augmentation, the teacher's outputs on the whole training set,
    computed once, ``(features (n, p), logits (n, c))`` on ``device``; None otherwise."""
    source = BatchSource(dataset, 512, device=device)
    if source.memory is None or source.augmented:
        return None
    feats, logits, _ = predict(teacher, dataset, device=device)
    return feats.to(device), logits.to(device)


def student_objective(spec: StudentSpec, transfer, teacher_net: nn.Module, train_set: Dataset, dev: torch.device):
    """``objective(net, x, y, idx) -> dict of loss terms`` of a student run.

    The teacher runs under ``torch.inference_mode()``; for in-memory data without augmentation
    its outputs are computed once and looked up by ``idx``.
    """
    class_aware = spec.mode == CLASS_AWARE
    weight, ce_weight = spec.loss.transfer_weight, spec.loss.ce_weight
    ce = nn.CrossEntropyLoss()
    cached_teacher = _teacher_outputs(train_set, teacher_net, dev) if transfer is not None else None
    amp = spec.train.amp and dev.type == "cuda"
    # On the CPU, under torch.compile the loss runs eagerly between the compiled graphs: its input
    # checks read values back and its soft rank calls numba, which dynamo cannot trace. On an
    # accelerator neither happens (Triton soft rank, no host sync), so the whole step is captured.
    transfer_loss = transfer
    if transfer is not None and dev.type == "cpu":
        transfer_loss = torch.compiler.disable(transfer)
    if transfer is not None and spec.train.channels_last:
        teacher_net.to(memory_format=torch.channels_last)

    compiled = spec.train.compile

    def objective(net, x, y, idx):
        out = net(x)
        terms = {}
        total = 0.0
        if transfer is not None:
            if cached_teacher is not None:
                t_out = _models.ModelOutput(cached_teacher[0][idx], cached_teacher[1][idx])
            else:
                if compiled:  # torch.compile cannot trace into inference mode; no_grad is the same work
                    with torch.no_grad():
                        t_out = teacher_net(x)
                else:
                    with torch.inference_mode():
                        t_out = teacher_net(x)
                    # Inference tensors cannot be saved for backward; a copy of two small matrices can.
                    t_out = _models.ModelOutput(t_out.features.clone(), t_out.logits.clone())
            if amp:  # the transfer loss in float32: ranks and Gram matrices are sensitive to rounding
                out = _models.ModelOutput(out.features.float(), out.logits.float())
                t_out = _models.ModelOutput(t_out.features.float(), t_out.logits.float())
                with torch.autocast(dev.type, enabled=False):
                    terms["transfer"] = transfer_loss(out, t_out, indices=idx)
            else:
                terms["transfer"] = transfer_loss(out, t_out, indices=idx)
            total = weight * terms["transfer"]
        if class_aware:
            terms["ce"] = ce(out.logits, y)
            total = total + ce_weight * terms["ce"]
        terms["loss"] = total
        return terms

    return objective
