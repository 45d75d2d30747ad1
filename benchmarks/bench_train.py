"""Speed of pcoh's training loop beside a plain PyTorch loop, on CIFAR-100-shaped data.

Writes a fake CIFAR-100 data set (random uint8 images and labels) in the official pickle format
(``cifar-100-python/{train,test,meta}``, as torchvision reads it) to a temporary folder, and times
one student epoch -- method ``pc``, class-aware, SGD, batch 64, random crop + flip augmentation --
two ways, in the same process, on the same models and loss:

- ``pcoh``: :func:`pcoh.train.train_student` (data held on the device as uint8, augmented there
  in batches, no host synchronisation per step, teacher under ``inference_mode``);
- ``plain``: torchvision's CIFAR100 data set with its transforms (the very object
  :func:`pcoh.data.load` returns) through ``DataLoader(num_workers=2, shuffle=True,
  drop_last=True)`` (``pin_memory`` on CUDA), teacher under ``no_grad``, ``CE + w * PC`` with
  the same :class:`pcoh.losses.PerceptionCoherenceLoss`, SGD, and ``loss.item()`` each step as
  the benchmark's reference training scripts log it.

Epoch times (wall clock, and CPU time of the process and its DataLoader workers, which a shared
machine disturbs less) are measured inside the loops (pcoh: around :func:`pcoh.train._run_epoch`, plain:
around the epoch loop), after a device synchronisation; the whole-call times (set-up, test-set
evaluation and checkpoint included) are printed beside them. Each timing is the median of
``--repeats`` repeats, pcoh and plain alternating. The weights are untrained: speed does not
depend on them.

Two pairs: ``resnet32x4 -> resnet8x4`` (the benchmark pair; on a CPU its convolutions dominate)
and, last, a small pair (``mlp -> mlp``: two multi-layer perceptrons on the flattened 3x32x32
images) whose arithmetic is so small that the data path and the per-step overhead dominate, as
they do on a GPU. One line per pair::

    ratio pcoh/plain [TEACHER->STUDENT]: X.XX

On CUDA, ``--compile`` adds pcoh with ``compile=True`` (CUDA graphs) and ``--teacher`` times a
teacher epoch (cross-entropy, ``train_teacher``) of the big pair's teacher too.

Usage::

    python benchmarks/bench_train.py                                  # CPU, 2,000 images
    python benchmarks/bench_train.py --device cuda --images 50000 --teacher --compile
"""
from __future__ import annotations

import argparse
import pickle
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from pcoh import data as D  # noqa: E402
from pcoh import losses as L  # noqa: E402
from pcoh import models as M  # noqa: E402
from pcoh import train as T  # noqa: E402

PAIRS = [("resnet32x4", "resnet8x4"), ("mlp", "mlp")]


def write_fake_cifar100(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Random images and labels in the official CIFAR-100 pickle format under ``root``."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        fine = [int(v) for v in rng.integers(0, 100, size=n)]
        with open(folder / split, "wb") as f:
            pickle.dump({"filenames": [f"{split}_{j}.png" for j in range(n)], "batch_label": f"{split} batch",
                         "fine_labels": fine, "coarse_labels": [v // 5 for v in fine],
                         "data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"fine_{k}" for k in range(100)],
                     "coarse_label_names": [f"coarse_{k}" for k in range(20)]}, f)
    return folder


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (DataLoader workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _EpochTimer:
    """Wraps pcoh.train._run_epoch to record each epoch's duration (synchronised)."""

    def __init__(self, device):
        self.device, self.times, self.cpu, self.real = device, [], [], T._run_epoch

    def __enter__(self):
        def timed(*args, **kwargs):
            _sync(self.device)
            start, cpu = time.perf_counter(), _cpu_seconds()
            out = self.real(*args, **kwargs)  # reads the epoch's sums: the queue is drained
            _sync(self.device)
            self.times.append(time.perf_counter() - start)
            self.cpu.append(_cpu_seconds() - cpu)
            return out

        T._run_epoch = timed
        return self

    def __exit__(self, *exc):
        T._run_epoch = self.real


def pcoh_student(split, teacher, student, device, epochs, root, **options):
    cfg = T.TrainConfig(epochs=epochs, batch_size=64, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4,
                        **options)
    spec = T.StudentSpec(model=student, method="pc", mode="class-aware", train=cfg)
    with _EpochTimer(device) as timer:
        start = time.perf_counter()
        T.train_student(spec, teacher, split, root=root, device=str(device), quiet=True, cache=False)
        total = time.perf_counter() - start
    return timer.times[-1], total, timer.cpu[-1]


def pcoh_teacher(split, name, device, epochs, root, **options):
    cfg = T.TrainConfig(epochs=epochs, batch_size=64, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4,
                        **options)
    spec = T.TeacherSpec(dataset="cifar100", model=name, train=cfg)
    with _EpochTimer(device) as timer:
        start = time.perf_counter()
        T.train_teacher(spec, split, root=root, device=str(device), quiet=True, cache=False)
        total = time.perf_counter() - start
    return timer.times[-1], total, timer.cpu[-1]


def plain_loop(split, teacher, student_name, device, epochs, workers, teacher_only=False):
    """The reference: torchvision data set + DataLoader workers, eager PyTorch, SGD."""
    start_all = time.perf_counter()
    torch.manual_seed(0)
    student = M.create(student_name if not teacher_only else teacher, num_classes=100, in_channels=3,
                       image_size=32).to(device)
    if not teacher_only:
        teacher = teacher.to(device).eval()
        pc = L.get("pc").to(device)
        weight = pc.default_weight
    ce = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loader = torch.utils.data.DataLoader(split.train, batch_size=64, shuffle=True, drop_last=True,
                                         num_workers=workers, pin_memory=device.type == "cuda")
    times, cpus = [], []
    for _ in range(epochs):
        student.train()
        _sync(device)
        start, cpu = time.perf_counter(), _cpu_seconds()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            out = student(x)
            loss = ce(out.logits, y)
            if not teacher_only:
                with torch.no_grad():
                    t = teacher(x)
                loss = loss + weight * pc(out, t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
        _sync(device)
        times.append(time.perf_counter() - start)
        cpus.append(_cpu_seconds() - cpu)  # the workers have exited: their time is counted
    return times[-1], time.perf_counter() - start_all, cpus[-1]


def _warm_up(teacher, student_name, device):
    """One untimed step of each piece (numba's JIT of the soft rank, first convolutions), so that
    the first variant timed does not pay for them."""
    student = M.create(student_name, num_classes=100, in_channels=3, image_size=32).to(device)
    teacher = teacher.to(device)
    x = torch.randn(64, 3, 32, 32, device=device)
    with torch.no_grad():
        t = teacher(x)
    out = student(x)
    (L.get("pc").to(device)(out, t) + out.logits.sum()).backward()
    _sync(device)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--epochs", type=int, default=1, help="epochs per timed run; the last one is timed")
    p.add_argument("--images", type=int, default=2000, help="training images of the fake data set")
    p.add_argument("--test-images", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the plain loop")
    p.add_argument("--pairs", nargs="+", default=None, help="TEACHER->STUDENT pairs (default: both)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of the main process (default torch's); 1 steadies timings on a shared CPU")
    p.add_argument("--compile", action="store_true", help="also time pcoh with compile=True")
    p.add_argument("--teacher", action="store_true", help="also time a teacher epoch of the first pair's teacher")
    p.add_argument("--smoke", action="store_true",
                   help="64 images, the mlp pair, one repetition, no workers: checks that it runs, measures nothing")
    args = p.parse_args(argv)
    if args.smoke:
        args.images, args.test_images, args.repeats, args.workers, args.pairs = 64, 32, 1, 0, ["mlp->mlp"]
    device = T.resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    pairs = [tuple(s.split("->")) for s in args.pairs] if args.pairs else PAIRS
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {where}; torch {torch.__version__}; {args.images} training images, batch 64, "
          f"{args.epochs} epoch(s) per run (last timed), median of {args.repeats}")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_fake_cifar100(tmp, args.images, args.test_images)
        split = D.load("cifar100", root=tmp, verify=False, augment=True)
        print("| pair | loop | epoch (s) | whole call (s) | epoch CPU time (s) |")
        print("|---|---|---|---|---|")
        lines, extras = [], []
        for t_name, s_name in pairs:
            teacher = M.create(t_name, num_classes=100, in_channels=3, image_size=32, seed=0)
            variants = {"pcoh": lambda r: pcoh_student(split, teacher, s_name, device, args.epochs, r),
                        "plain": lambda r: plain_loop(split, teacher, s_name, device, args.epochs, args.workers)}
            if args.compile:
                variants["pcoh compile"] = lambda r: pcoh_student(split, teacher, s_name, device, args.epochs, r,
                                                                  compile=True)
            if args.teacher and (t_name, s_name) == pairs[0]:
                variants["pcoh teacher"] = lambda r: pcoh_teacher(split, t_name, device, args.epochs, r)
                variants["plain teacher"] = lambda r: plain_loop(split, t_name, None, device, args.epochs,
                                                                 args.workers, teacher_only=True)
            _warm_up(teacher, s_name, device)
            results = {k: [] for k in variants}
            for rep in range(args.repeats):
                for name, run in variants.items():
                    results[name].append(run(tmp / f"runs-{rep}-{name.replace(' ', '-')}"))
            med = {k: tuple(statistics.median(r[i] for r in v) for i in range(3)) for k, v in results.items()}
            for k, (epoch, whole, cpu) in med.items():
                print(f"| {t_name}->{s_name} | {k} | {epoch:.2f} | {whole:.2f} | {cpu:.2f} |")
            ratio = med["pcoh"][0] / med["plain"][0]
            extras.append(f"CPU-time ratio pcoh/plain [{t_name}->{s_name}]: {med['pcoh'][2] / med['plain'][2]:.2f}")
            lines.append(f"ratio pcoh/plain [{t_name}->{s_name}]: {ratio:.2f}")
            if args.compile:
                extras.append(f"ratio pcoh-compile/plain [{t_name}->{s_name}]: {med['pcoh compile'][0] / med['plain'][0]:.2f}")
            if "pcoh teacher" in med:
                extras.append(f"ratio pcoh/plain teacher epoch [{t_name}]: "
                             f"{med['pcoh teacher'][0] / med['plain teacher'][0]:.2f}")
            ratios.append(ratio)
        print()
        print("\n".join(extras + lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
