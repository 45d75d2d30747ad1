"""Data sets and teachers shared by the study scripts of ``benchmarks/`` (not part of the package).

- ``digits``: the embedded digits (``pcoh.data.load("digits")``, 1,437 train / 360 test);
- ``digits-deformed``: the same images, each warped by its own random affine map (rotation
  +-25 degrees, scale 0.85-1.15, shear +-0.2, bilinear) plus Gaussian noise (sd 0.05), from a
  fixed seed.

:func:`teacher_spec` names each data set in the teacher's cache key, so the two teachers are
cached apart under one root; :func:`prepare_teacher` trains or loads one and reports it.
"""
from __future__ import annotations

import tempfile
import time

import numpy as np
import torch

from pcoh import data as pdata
from pcoh.train import TeacherSpec, TrainConfig, predict, train_teacher

DATASETS = ("digits", "digits-deformed")
#: Seed of the deformations of ``digits-deformed``.
DEFORM_SEED = 1234


def deformed_digits(seed: int = DEFORM_SEED) -> "pdata.DataSplit":
    """The digits, each image warped by its own random affine map plus noise (fixed seed)."""
    split = pdata.load("digits")
    g = torch.Generator().manual_seed(seed)

    def warp(x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        angle = (torch.rand(n, generator=g) * 2 - 1) * np.deg2rad(25)
        scale = 0.85 + 0.3 * torch.rand(n, generator=g)
        shear = (torch.rand(n, generator=g) * 2 - 1) * 0.2
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin + shear, torch.zeros(n)], 1),
                             torch.stack([sin, cos, torch.zeros(n)], 1)], 1)
        grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        out = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out + 0.05 * torch.randn(out.shape, generator=g)

    (xtr, ytr), (xte, yte) = split.train.tensors, split.test.tensors
    return pdata.from_arrays(warp(xtr), ytr, warp(xte), yte, num_classes=10, name="digits-deformed")


def load_data(name: str) -> "pdata.DataSplit":
    """One of :data:`DATASETS`."""
    if name == "digits":
        return pdata.load("digits")
    if name == "digits-deformed":
        return deformed_digits()
    raise ValueError(f"unknown data set {name!r}; expected one of {list(DATASETS)}")


def teacher_spec(name: str, epochs: int, batch_size: int = 128) -> TeacherSpec:
    """The ``digits_resnet`` teacher of data set ``name`` (cross-entropy, Adam 1e-3).

    The data set is part of the cache key (``digits`` keeps the key of a plain
    ``TeacherSpec(model="digits_resnet", ...)``; ``digits-deformed`` adds its name and
    deformation seed), so the teachers of the two data sets never share a cached run.
    """
    train = TrainConfig(epochs=epochs, batch_size=batch_size)
    if name == "digits":
        return TeacherSpec(model="digits_resnet", train=train)
    if name == "digits-deformed":
        return TeacherSpec(dataset=name, model="digits_resnet", train=train, data={"deform_seed": DEFORM_SEED})
    raise ValueError(f"unknown data set {name!r}; expected one of {list(DATASETS)}")


def prepare_teacher(name: str, epochs: int, root, device) -> dict:
    """Load data set ``name``, train or load its cached teacher, and print one line on it.

    Returns
    -------
    dict
        ``split``, ``spec``, ``teacher`` and the teacher's test features ``t_test``.
    """
    split = load_data(name)
    spec = teacher_spec(name, epochs)
    t0 = time.perf_counter()
    teacher = train_teacher(spec, split, root=root, device=device, quiet=True)
    t_test, logits, y_test = predict(teacher.model, split.test)
    acc = float((logits.argmax(1) == y_test).float().mean())
    print(f"[{name}] {len(split.train)} train / {len(split.test)} test; teacher digits_resnet ({epochs} epochs, "
          f"{'cached' if teacher.cached else 'trained'}, {time.perf_counter() - t0:.0f} s): test accuracy {acc:.4f}",
          flush=True)
    return {"split": split, "spec": spec, "teacher": teacher, "t_test": t_test}


SMOKE_HELP = ("a smoke run: the digits only, 1 teacher epoch, 1 student epoch, one seed, one batch size, a "
              "temporary cache unless --root is given; checks that the study starts and finishes, measures nothing")


def smoke_root(args) -> None:
    """Send a smoke run's cache to a fresh temporary folder unless ``--root`` was given."""
    if args.root == "data":
        args.root = tempfile.mkdtemp(prefix="pcoh-smoke-")
