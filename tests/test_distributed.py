"""Several processes (gloo on CPUs): the global-batch losses, DDP training, torchrun, timeouts.

The multi-process tests start real processes (``torch.multiprocessing`` or ``torchrun``) on a
free local port; each is kept small for two shared CPU cores.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from pcoh import distributed, losses

ROOT = Path(__file__).resolve().parents[1]
RELATIONAL = ("pc", "rkd", "pkt", "sp", "cc")
N, D_IN, D_S, D_T = 12, 5, 4, 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(rank, size, port):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))


def _problem(method):
    """A tiny float64 student (linear, batch norm, linear) on fixed inputs, and its loss."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D_IN, generator=g, dtype=torch.float64)
    teacher = torch.randn(N, D_T, generator=g, dtype=torch.float64)
    torch.manual_seed(1)
    student = nn.Sequential(nn.Linear(D_IN, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, D_S)).double()
    kwargs = dict(num_samples=N, num_negatives=16, embed_dim=8, seed=0) if method == "crd" else {}
    if method == "rrd":  # a queue shorter than the global batch: it keeps the global batch's last rows
        kwargs = dict(num_samples=N, embed_dim=8, queue_size=N - 3)
    if method == "dist":  # logits: as many classes for the teacher as for the student
        teacher = teacher[:, :D_S].contiguous()
    loss = losses.get(method, student_dim=D_S, teacher_dim=D_T, **kwargs).double()
    return x, teacher, student, loss


def _step(method, x, teacher, student, loss, idx):
    """One forward and backward; returns the loss, every gradient and the running stats."""
    net = distributed.wrap(distributed.sync_batchnorm(student))
    value = loss(net(x), teacher, indices=idx)
    value.backward()
    distributed.average_gradients(list(loss.parameters()))
    params = list(student.named_parameters()) + [("loss." + k, p) for k, p in loss.named_parameters()]
    grads = {k: p.grad.detach().clone() for k, p in params if p.requires_grad}  # RRD's teacher projection is frozen
    distributed.unsync_batchnorm(student)
    buffers = {k: b.clone() for k, b in student.named_buffers()}
    buffers.update({"loss." + k: b.clone() for k, b in loss.named_buffers()})  # CRD's memories, RRD's queue
    return float(value.detach()), grads, buffers


def _loss_worker(rank, size, port, out):
    _env(rank, size, port)
    assert distributed.init("cpu", timeout=60)
    try:
        results = {}
        for method in RELATIONAL + ("fitnet", "crd", "rrd", "dist"):
            x, teacher, student, loss = _problem(method)
            xs, ts, idx = distributed.shard([x, teacher, torch.arange(N)])
            results[method] = _step(method, xs, ts, student, loss, idx)
        results["shard_sizes"] = [len(distributed.shard([torch.arange(7)])[0])]
        results["uneven"] = distributed.gather_no_grad(torch.arange(rank * 3, rank * 3 + 1 + rank))
        # Unequal shards with gradient: rank 0 holds 1 row, rank 1 two. Every process computes
        # the same loss sum_j j * g_j, so each row's gradient is 2 x its global position.
        v = torch.ones(1 + rank, 2, dtype=torch.float64, requires_grad=True)
        g = distributed.gather_with_grad(v)
        (g * torch.arange(3.0, dtype=torch.float64).view(-1, 1)).sum().backward()
        results["uneven_grad"] = v.grad
        torch.save(results, f"{out}-{rank}.pt")
    finally:
        distributed.teardown()


def test_two_processes_match_one_process_on_the_whole_batch(tmp_path):
    """Mean of the processes' losses = the one-process loss, gradients equal after averaging."""
    port = _free_port()
    mp.start_processes(_loss_worker, args=(2, port, str(tmp_path / "r")), nprocs=2, join=True, start_method="spawn")
    got = [torch.load(tmp_path / f"r-{r}.pt", weights_only=False) for r in range(2)]
    for method in RELATIONAL + ("fitnet", "crd", "rrd", "dist"):
        x, teacher, student, loss = _problem(method)
        ref_value, ref_grads, ref_buffers = _step(method, x, teacher, student, loss, torch.arange(N))
        values = [g[method][0] for g in got]
        # CRD scores in float32 (exp(1 / 0.07) overflows lower precisions): a looser tolerance.
        tol = dict(atol=1e-5, rtol=1e-5) if method == "crd" else dict(atol=1e-9, rtol=1e-7)
        assert sum(values) / 2 == pytest.approx(ref_value, abs=1e-6 if method != "crd" else 1e-4, rel=0), method
        if method == "pc":  # each process ranks its own references against the global batch
            assert values[0] != pytest.approx(values[1], abs=1e-6)
        elif method in RELATIONAL + ("crd", "rrd", "dist"):  # every process computed the loss on the global batch
            assert values[0] == pytest.approx(values[1], abs=1e-12), method
        for g in got:
            assert g[method][1].keys() == ref_grads.keys()
            for k, ref in ref_grads.items():
                torch.testing.assert_close(g[method][1][k], ref, **tol, msg=f"{method} {k}")
            # batch norm saw the global batch's statistics; CRD's memories and RRD's queue saw every sample
            assert g[method][2].keys() == ref_buffers.keys()
            for k, ref in ref_buffers.items():
                close = dict(atol=1e-6, rtol=1e-6) if k.startswith("loss.") else dict(atol=1e-12, rtol=1e-9)
                torch.testing.assert_close(g[method][2][k], ref, **close, msg=f"{method} {k}")
    # shards of 7 items over 2 processes: 3 and 4; a gather of unequal parts keeps rank order.
    assert [g["shard_sizes"][0] for g in got] == [3, 4]
    assert got[0]["uneven"].tolist() == [0, 3, 4]
    assert got[0]["uneven_grad"].tolist() == [[0.0, 0.0]]
    assert got[1]["uneven_grad"].tolist() == [[2.0, 2.0], [4.0, 4.0]]


def _tv_problem():
    """A torchvision ResNet-18 student in float64 on 8 fixed 8x8 grey images, a teacher's features."""
    from pcoh import models

    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 8, 8, generator=g, dtype=torch.float64)
    teacher = torch.randn(8, D_T, generator=g, dtype=torch.float64)
    student = models.create("tv:resnet18", num_classes=10, in_channels=1, image_size=8, seed=0).double().train()
    loss = losses.get("pc", student_dim=student.feature_dim, teacher_dim=D_T).double()
    return x, teacher, student, loss


def _tv_step(x, teacher, student, loss, idx):
    """One PC step's gradients and batch-norm statistics, then the statistics recomputed (precise BN)."""
    from pcoh import batchnorm

    net = distributed.wrap(distributed.sync_batchnorm(student))
    loss(net(x).features, teacher, indices=idx).backward()
    grads = {k: p.grad.detach().clone() for k, p in student.named_parameters() if p.grad is not None}
    stepped = {k: b.clone() for k, b in student.named_buffers()}
    batchnorm.recompute_statistics(student, [x, x.flip(0)])
    distributed.unsync_batchnorm(student)
    recomputed = {k: b.clone() for k, b in student.named_buffers()}
    return grads, stepped, recomputed


def _tv_worker(rank, size, port, out):
    _env(rank, size, port)
    torch.set_num_threads(1)
    assert distributed.init("cpu", timeout=120)
    try:
        x, teacher, student, loss = _tv_problem()
        xs, ts, idx = distributed.shard([x, teacher, torch.arange(len(x))])
        grads, stepped, _ = _tv_step(xs, ts, student, loss, idx)
        from pcoh import batchnorm

        distributed.sync_batchnorm(student)  # precise BN over each process's shard of two global batches
        batchnorm.recompute_statistics(student, [xs, distributed.shard([x.flip(0)])[0]])
        distributed.unsync_batchnorm(student)
        recomputed = {k: b.clone() for k, b in student.named_buffers()}
        torch.save((grads, stepped, recomputed), f"{out}-{rank}.pt")
    finally:
        distributed.teardown()


@pytest.mark.slow
def test_a_torchvision_student_with_batch_norm_gets_the_one_process_gradients_and_statistics(tmp_path):
    """tv:resnet18 in float64: the gradients of a PC step, the batch-norm running statistics and the
    recomputed ones (precise BN) on 2 processes are the one-process ones. What is left between a
    2-process and a 1-process run in float32 is rounding (README, several GPUs)."""
    port = _free_port()
    mp.start_processes(_tv_worker, args=(2, port, str(tmp_path / "tv")), nprocs=2, join=True, start_method="spawn")
    got = [torch.load(tmp_path / f"tv-{r}.pt", weights_only=False) for r in range(2)]
    x, teacher, student, loss = _tv_problem()
    ref_grads, ref_stepped, ref_recomputed = _tv_step(x, teacher, student, loss, torch.arange(len(x)))
    assert any("bn" in k for k in ref_stepped) and ref_grads
    for grads, stepped, recomputed in got:
        assert grads.keys() == ref_grads.keys()
        for k, ref in ref_grads.items():
            torch.testing.assert_close(grads[k], ref, atol=1e-9, rtol=1e-7, msg=k)
        for mine, ref_all in ((stepped, ref_stepped), (recomputed, ref_recomputed)):
            for k, ref in ref_all.items():
                torch.testing.assert_close(mine[k], ref, atol=1e-9, rtol=1e-7, msg=k)


def test_one_process_changes_nothing(monkeypatch):
    """Without torchrun or with WORLD_SIZE=1, nothing is initialised and helpers are identities."""
    for env in ({}, {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                     "MASTER_PORT": "1"}):
        for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            monkeypatch.delenv(k, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        assert distributed.init("cpu") is False
        assert not torch.distributed.is_initialized()
        assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
        x = torch.randn(4, 3, requires_grad=True)
        assert distributed.gather_with_grad(x) is x and distributed.gather_no_grad(x) is x
        model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
        assert distributed.wrap(distributed.sync_batchnorm(model)) is model
        assert type(model[1]) is nn.BatchNorm1d
        distributed.barrier()
        distributed.check_batch_size(7)
        assert distributed.shard([x])[0] is x


def test_bad_settings(monkeypatch):
    monkeypatch.setenv("PCOH_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="PCOH_DIST_TIMEOUT"):
        distributed.init("cpu")
    monkeypatch.delenv("PCOH_DIST_TIMEOUT")
    with pytest.raises(ValueError, match="timeout"):
        distributed.init("cpu", timeout=-1)
    with pytest.raises(TypeError, match="timeout"):
        distributed.init("cpu", timeout="1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    for k in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ValueError, match="torchrun"):
        distributed.init("cpu", timeout=1)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        distributed.init("cpu")


def _stall_worker(rank, size, port, out):
    _env(rank, size, port)
    distributed.init("cpu", timeout=2)
    if rank == 1:
        time.sleep(6)  # alive but never joins the barrier
        os._exit(0)
    start = time.perf_counter()
    try:
        distributed.barrier()
        result = ("returned", time.perf_counter() - start)
    except Exception as err:  # noqa: BLE001 - what matters is that it fails, and when
        result = (type(err).__name__, time.perf_counter() - start)
    torch.save(result, out)
    os._exit(0)


def test_a_stalled_peer_makes_the_others_fail_after_the_timeout(tmp_path):
    port = _free_port()
    ctx = mp.start_processes(_stall_worker, args=(2, port, str(tmp_path / "r0.pt")), nprocs=2, join=False,
                             start_method="spawn")
    ctx.processes[0].join(timeout=40)
    assert not ctx.processes[0].is_alive(), "rank 0 hung instead of timing out"
    kind, waited = torch.load(tmp_path / "r0.pt")
    assert kind != "returned"
    assert 1.5 < waited < 5.5
    for p in ctx.processes:
        p.join(timeout=20)


# ----------------------------------------------------------------------------- the main job
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
JOB = ["-m", "pcoh", "--methods", "pc", "--modes", "class-unaware", "--seeds", "1", "--epochs", "1",
       "--teacher-epochs", "1", "--batch-size", "64", "--teacher-batch-size", "128", "--device", "cpu",
       "--quiet"]


def _job(tmp_path, name, nproc, *extra, root=None, timeout=240, wait=True):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "PCOH_DIST_TIMEOUT": "30"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    launcher = TORCHRUN + ["--nproc_per_node", str(nproc), "--master_port", str(_free_port())] if nproc else []
    root = root or tmp_path / f"{name}-data"
    cmd = [*launcher, *([] if nproc else [sys.executable]), *JOB, "--root", str(root), "--cache", str(root),
           "--output", str(tmp_path / f"{name}-results"), "--figures", str(tmp_path / f"{name}-figures"), *extra]
    if not wait:
        return subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    return subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def _pc_n(tmp_path, name):
    table = pd.read_csv(tmp_path / f"{name}-results" / "digits" / "results.csv")
    return table, float(table.loc[table["method"] == "pc", "pc_n"].iloc[0])


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The job in one process without torchrun: the reference of the torchrun runs."""
    tmp = tmp_path_factory.mktemp("plain")
    out = _job(tmp, "plain", 0)
    assert out.returncode == 0, out.stdout + out.stderr
    return tmp, out


def _final(tmp, name):
    path = next((tmp / f"{name}-data" / "runs").glob("student-*")) / "final.pt"
    return torch.load(path, weights_only=False)


@pytest.mark.slow
def test_torchrun_two_processes_give_the_one_process_result(plain, tmp_path):
    ref_dir, one = plain
    two = _job(tmp_path, "two", 2)
    assert two.returncode == 0, two.stdout + two.stderr
    print("\n--- one process ---\n" + one.stdout + "\n--- torchrun, 2 processes ---\n" + two.stdout)
    assert two.stdout.count("| student | method | mode |") == 1  # rank 0 alone reports
    assert len(list((tmp_path / "two-results").rglob("results.csv"))) == 1
    t1, pc1 = _pc_n(ref_dir, "plain")
    t2, pc2 = _pc_n(tmp_path, "two")
    assert abs(pc1 - pc2) < 1e-3, (pc1, pc2)
    # The untrained student is the same in both runs: its PC_n moves only with the teacher,
    # whose training was distributed as well.
    untrained = lambda t: float(t.loc[t["method"] == "untrained", "pc_n"].iloc[0])  # noqa: E731
    assert abs(untrained(t1) - untrained(t2)) < 1e-3
    runs = sorted(p.name for p in (tmp_path / "two-data" / "runs").iterdir())
    assert runs == sorted(p.name for p in (ref_dir / "plain-data" / "runs").iterdir())
    # The per-epoch loss is the mean over the global batch, as in one process.
    h1, h2 = _final(ref_dir, "plain")["history"], _final(tmp_path, "two")["history"]
    assert h1[0]["transfer"] == pytest.approx(h2[0]["transfer"], rel=1e-3)


@pytest.mark.slow
def test_torchrun_world_size_one_is_a_plain_run(plain, tmp_path):
    ref_dir, _ = plain
    single = _job(tmp_path, "single", 1)
    assert single.returncode == 0, single.stdout + single.stderr
    pd.testing.assert_frame_equal(_pc_n(ref_dir, "plain")[0], _pc_n(tmp_path, "single")[0])
    a, b = _final(ref_dir, "plain"), _final(tmp_path, "single")
    assert a["history"] == b["history"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_batch_size_must_split_over_the_processes(tmp_path):
    out = _job(tmp_path, "odd", 2, "--batch-size", "63", timeout=120)
    assert out.returncode != 0
    assert "--batch-size" in out.stdout + out.stderr and "divisible" in out.stdout + out.stderr


TRAIN_SCRIPT = """
import sys
from pcoh import data, distributed, models, train
distributed.init("cpu")
split = data.load("digits")
teacher = models.create("mlp", num_classes=10, in_channels=1, image_size=8, seed=1)
spec = train.StudentSpec("mlp", "pc", train=train.TrainConfig(epochs=int(sys.argv[2]), batch_size=32))
train.train_student(spec, teacher, split, teacher_key="t", root=sys.argv[1], device="cpu", quiet=True)
distributed.teardown()
"""


@pytest.mark.slow
def test_a_dead_process_stops_the_job_and_the_checkpoint_stays_valid(tmp_path):
    """Kill rank 1 once rank 0 has written a checkpoint: the job fails fast; resume works."""
    script = tmp_path / "train_one.py"
    script.write_text(TRAIN_SCRIPT)
    root, epochs = tmp_path / "data", 6
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PCOH_DIST_TIMEOUT": "30"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [*TORCHRUN, "--nproc_per_node", "2", "--master_port", str(_free_port()), str(script), str(root), str(epochs)]
    job = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    try:
        deadline = time.time() + 120
        ckpt = None
        while time.time() < deadline and ckpt is None and job.poll() is None:
            found = list(root.glob("runs/student-*/checkpoint.pt"))
            ckpt = found[0] if found else None
            time.sleep(0.1)
        assert ckpt is not None, "no checkpoint appeared"
        workers = _children(job.pid)
        assert len(workers) == 2, workers
        victim = next(pid for pid in workers if _rank_of(pid) == 1)
        os.kill(victim, signal.SIGKILL)
        start = time.time()
        out, _ = job.communicate(timeout=60)
        assert job.returncode != 0, out
        assert time.time() - start < 45
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    state = torch.load(ckpt, weights_only=False)  # whole and loadable
    assert 1 <= state["epoch"] < epochs and len(state["history"]) == state["epoch"]
    # Resuming (here in one process, same global batch) finishes the run from that checkpoint.
    again = subprocess.run([sys.executable, str(script), str(root), str(epochs)], env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    final = torch.load(ckpt.parent / "final.pt", weights_only=False)
    assert len(final["history"]) == epochs
    assert final["history"][: state["epoch"]] == state["history"]


def _children(pid):
    """Worker processes of the torchrun launcher ``pid`` (children of its agent)."""
    out = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for k in map(int, kids):
            if "RANK=" in _environ(k).get("_", "") or "RANK" in _environ(k):
                out.append(k)
            else:
                todo.append(k)
    return out


def _environ(pid) -> dict:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return {}
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def _rank_of(pid) -> int:
    return int(_environ(pid)["RANK"])

