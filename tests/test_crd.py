"""CRDLoss: NCE value against a brute-force reference, memory update, Z, sampling, training, bad inputs."""
from __future__ import annotations

import math

import pytest
import torch

from pcoh import losses
from pcoh import train as T
from pcoh.losses import CRDLoss

from _devices import DEVICES


def _randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _small(n_data=20, k=7, d_s=5, d_t=6, m=4, seed=0, **kwargs) -> CRDLoss:
    torch.manual_seed(seed)
    return CRDLoss(d_s, d_t, n_data, embed_dim=m, num_negatives=k, seed=seed, **kwargs)


def _unit(x):
    n = math.sqrt(sum(v * v for v in x))
    return [v / n for v in x]


def _embed(linear, f):
    w, b = linear.weight.double().tolist(), linear.bias.double().tolist()
    return _unit([sum(wi * fi for wi, fi in zip(row, f)) + bj for row, bj in zip(w, b)])


def crd_reference(loss, s, t, rows, z=None):
    """The paper's NCE (eq. 18, the benchmark's ContrastLoss), by loops in float64.

    ``rows`` (n, K + 1): memory rows scored for each sample (column 0 the positive).
    ``z``: [Z_S, Z_T] if already fixed, else estimated from this batch.
    Returns the loss and the Z used.
    """
    n_data, k, tau = loss.num_samples, loss.num_negatives, loss.temperature
    s, t = s.double().tolist(), t.double().tolist()
    m_s, m_t = loss.student_memory.double().tolist(), loss.teacher_memory.double().tolist()
    total, used = 0.0, []
    for side, (feats, embed, memory) in enumerate(
        [(s, loss.embed_student, m_t), (t, loss.embed_teacher, m_s)]
    ):
        v = [_embed(embed, f) for f in feats]
        out = [[math.exp(sum(a * b for a, b in zip(memory[r], v[i])) / tau) for r in rows[i]] for i in range(len(v))]
        if z is None:
            zz = sum(map(sum, out)) / (len(out) * len(out[0])) * n_data
        else:
            zz = z[side]
        used.append(zz)
        c, eps = k / n_data, 1e-7
        acc = 0.0
        for row in out:
            p = [o / zz for o in row]
            acc += math.log(p[0] / (p[0] + c + eps))
            acc += sum(math.log(c / (q + c + eps)) for q in p[1:])
        total += -acc / len(out)
    return total, used


def _fixed_rows(loss, rows):
    """Make ``loss`` score the given rows (column 0 the positive) instead of drawing negatives."""
    loss._draw = lambda idx: rows[:, 1:].to(idx.device)


def crd_reference_torch(loss, s, t, rows, z):
    """The same NCE with torch ops on the gathered (n, K + 1) scores, for gradients."""
    c, eps, out = loss.num_negatives / loss.num_samples, 1e-7, 0.0
    for side, (f, embed, memory) in enumerate(
        [(s, loss.embed_student, loss.teacher_memory), (t, loss.embed_teacher, loss.student_memory)]
    ):
        v = torch.nn.functional.normalize(embed(f))
        p = torch.exp(torch.stack([memory[rows[i]] @ v[i] for i in range(len(v))]) / loss.temperature) / z[side]
        d1 = torch.log(p[:, 0] / (p[:, 0] + c + eps))
        d0 = torch.log(c / (p[:, 1:] + c + eps))
        out = out - (d1.sum() + d0.sum()) / len(v)
    return out


# ----------------------------------------------------------------------------- values


def test_shapes_buffers_and_parameters():
    loss = CRDLoss(5, 6, 20)
    assert loss.student_memory.shape == (20, 128) and loss.teacher_memory.shape == (20, 128)
    assert loss.embed_student.weight.shape == (128, 5) and loss.embed_teacher.weight.shape == (128, 6)
    assert set(dict(loss.named_buffers())) == {"student_memory", "teacher_memory", "normalizer", "sampling"}
    assert {"embed_student.weight", "embed_teacher.weight"} <= set(loss.state_dict())
    stdv = 1 / math.sqrt(128 / 3)
    for mem in (loss.student_memory, loss.teacher_memory):
        assert mem.abs().max() <= stdv and mem.abs().max() > 0.9 * stdv  # uniform in [-stdv, stdv]
    assert loss.normalizer.tolist() == [-1.0, -1.0]
    out = loss(_randn(4, 5), _randn(4, 6, seed=1), indices=torch.tensor([3, 0, 19, 7]))
    assert out.shape == () and torch.isfinite(out)
    assert loss.needs_indices and loss.default_weight == 0.8 and loss.ce_weight == 1.0
    assert not loss.class_aware_only


# (N, K, m): K + 1 > N (draws counted), N <= (K + 1) m (one product), N > (K + 1) m (gathered).
PATHS = [(5, 12, 4), (20, 7, 4), (40, 3, 4)]


@pytest.mark.parametrize("n_data, k, m", PATHS)
def test_matches_bruteforce_reference_over_two_calls(n_data, k, m):
    loss = _small(n_data=n_data, k=k, m=m).double()
    s, t = _randn(3, 5, dtype=torch.float64), _randn(3, 6, seed=1, dtype=torch.float64)
    idx = torch.tensor([4, 0, 2])
    negatives = torch.randint(0, n_data, (3, k), generator=torch.Generator().manual_seed(0))
    rows = torch.cat([idx.unsqueeze(1), negatives], dim=1)
    _fixed_rows(loss, rows)
    want, z = crd_reference(loss, s, t, rows.tolist())
    got = loss(s, t, indices=idx)
    assert got.item() == pytest.approx(want, rel=1e-9)
    assert loss.normalizer.tolist() == pytest.approx(z, rel=1e-9)
    # Second call: memories have moved, Z stays the one from the first batch.
    s2, t2 = _randn(3, 5, seed=2, dtype=torch.float64), _randn(3, 6, seed=3, dtype=torch.float64)
    want2, _ = crd_reference(loss, s2, t2, rows.tolist(), z=z)
    got2 = loss(s2, t2, indices=idx)
    assert got2.item() == pytest.approx(want2, rel=1e-9)
    assert loss.normalizer.tolist() == pytest.approx(z, rel=1e-12)


@pytest.mark.parametrize("n_data, k, m", PATHS)
def test_gradient_matches_reference(n_data, k, m):
    # The three score paths arrange the sums differently; their gradients must be those of the
    # plain (n, K + 1) formula.
    loss = _small(n_data=n_data, k=k, m=m).double()
    idx = torch.tensor([4, 0, 2])
    negatives = torch.randint(0, n_data, (3, k), generator=torch.Generator().manual_seed(0))
    rows = torch.cat([idx.unsqueeze(1), negatives], dim=1)
    _fixed_rows(loss, rows)
    loss(_randn(3, 5, seed=5, dtype=torch.float64), _randn(3, 6, seed=6, dtype=torch.float64), indices=idx)  # sets Z
    reference = _small(n_data=n_data, k=k, m=m).double()
    reference.load_state_dict(loss.state_dict())
    s = _randn(3, 5, dtype=torch.float64).requires_grad_()
    s_ref = s.detach().clone().requires_grad_()
    t = _randn(3, 6, seed=1, dtype=torch.float64)
    want = crd_reference_torch(reference, s_ref, t, rows, reference.normalizer.tolist())
    want.backward()
    got = loss(s, t, indices=idx)
    got.backward()
    assert got.item() == pytest.approx(want.item(), rel=1e-9)
    torch.testing.assert_close(s.grad, s_ref.grad)
    for name in ("embed_student", "embed_teacher"):
        torch.testing.assert_close(getattr(loss, name).weight.grad, getattr(reference, name).weight.grad)


def test_normalizer_fixed_after_first_call():
    loss = _small()
    idx = torch.tensor([1, 2, 3, 4])
    loss(_randn(4, 5), _randn(4, 6, seed=1), indices=idx)
    z = loss.normalizer.clone()
    assert (z > 0).all()
    for seed in range(2, 5):
        loss(10 * _randn(4, 5, seed=seed), _randn(4, 6, seed=seed + 10), indices=idx + seed)
    assert torch.equal(loss.normalizer, z)


def test_memory_update_by_hand():
    # Identity embedding: the student feature (3, 4) embeds to (0.6, 0.8); memory row (1, 0);
    # 0.5 * (1, 0) + 0.5 * (0.6, 0.8) = (0.8, 0.4), renormalised: (2, 1) / sqrt(5).
    loss = CRDLoss(2, 2, 5, embed_dim=2, num_negatives=3, seed=0)
    with torch.no_grad():
        for lin in (loss.embed_student, loss.embed_teacher):
            lin.weight.copy_(torch.eye(2))
            lin.bias.zero_()
        loss.student_memory[3] = torch.tensor([1.0, 0.0])
        loss.teacher_memory[3] = torch.tensor([0.0, -2.0])
    before_s, before_t = loss.student_memory.clone(), loss.teacher_memory.clone()
    loss(torch.tensor([[3.0, 4.0]]), torch.tensor([[-1.0, 0.0]]), indices=torch.tensor([3]))
    r5 = math.sqrt(5)
    assert loss.student_memory[3].tolist() == pytest.approx([2 / r5, 1 / r5], rel=1e-6)
    # Teacher: 0.5 * (0, -2) + 0.5 * (-1, 0) = (-0.5, -1) -> (-1, -2) / sqrt(5).
    assert loss.teacher_memory[3].tolist() == pytest.approx([-1 / r5, -2 / r5], rel=1e-6)
    others = [0, 1, 2, 4]
    assert torch.equal(loss.student_memory[others], before_s[others])
    assert torch.equal(loss.teacher_memory[others], before_t[others])


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_memory_update_matches_formula(momentum):
    loss = _small(momentum=momentum)
    s, t, idx = _randn(4, 5), _randn(4, 6, seed=1), torch.tensor([5, 0, 17, 2])
    before_s, before_t = loss.student_memory.clone(), loss.teacher_memory.clone()
    with torch.no_grad():
        v_s = torch.nn.functional.normalize(loss.embed_student(s))
        v_t = torch.nn.functional.normalize(loss.embed_teacher(t))
    loss(s, t, indices=idx)
    for before, after, v in ((before_s, loss.student_memory, v_s), (before_t, loss.teacher_memory, v_t)):
        want = torch.nn.functional.normalize(momentum * before[idx] + (1 - momentum) * v)
        torch.testing.assert_close(after[idx], want)
        assert torch.allclose(after[idx].norm(dim=1), torch.ones(4))


def test_gradients_reach_student_and_both_embeddings_not_teacher():
    loss = _small()
    s = _randn(4, 5).requires_grad_()
    t = _randn(4, 6, seed=1).requires_grad_()
    loss(s, t, indices=torch.arange(4)).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert t.grad is None
    for lin in (loss.embed_student, loss.embed_teacher):
        assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    assert not loss.student_memory.requires_grad and not loss.teacher_memory.requires_grad


def test_loss_falls_on_separable_toy_data():
    # Teacher: two well-separated clusters; student: free features, learned from scratch.
    n, gen = 64, torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    teacher = torch.randn(n, 8, generator=gen) * 0.1 + (labels.float() * 2 - 1).unsqueeze(1) * 3
    student = torch.nn.Parameter(torch.randn(n, 4, generator=gen))
    loss = CRDLoss(4, 8, n, embed_dim=16, num_negatives=128, seed=0)
    opt = torch.optim.Adam([student, *loss.parameters()], lr=0.05)
    epochs = []
    for epoch in range(15):
        order = torch.randperm(n, generator=gen)
        values = []
        for lo in range(0, n, 16):
            idx = order[lo:lo + 16]
            value = loss(student[idx], teacher[idx], indices=idx)
            opt.zero_grad()
            value.backward()
            opt.step()
            values.append(value.item())
        epochs.append(sum(values) / len(values))
    assert epochs[-1] < 0.8 * epochs[0], epochs
    # The student has learned the teacher's split: nearest neighbours share the cluster.
    x = torch.nn.functional.normalize(student.detach())
    sim = x @ x.T
    sim.fill_diagonal_(-2)
    assert (labels[sim.argmax(dim=1)] == labels).float().mean() >= 0.95


# ----------------------------------------------------------------------------- sampling


def _three_calls(loss, device="cpu"):
    out = []
    for step in range(3):
        s, t = _randn(6, 5, seed=step).to(device), _randn(6, 6, seed=step + 10).to(device)
        out.append(loss(s, t, indices=torch.arange(6, device=device) + step).item())
    return out


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_same_run_different_seed_different_negatives(device):
    a, b = _small().to(device), _small().to(device)
    assert _three_calls(a, device) == _three_calls(b, device)
    assert torch.equal(a.student_memory, b.student_memory)
    c = _small().to(device)
    c.sampling[0] = 12345
    assert _three_calls(c, device) != _three_calls(_small().to(device), device)


def test_seed_none_follows_torch_manual_seed():
    torch.manual_seed(3)
    a = CRDLoss(5, 6, 20, embed_dim=4, num_negatives=7)
    torch.manual_seed(3)
    b = CRDLoss(5, 6, 20, embed_dim=4, num_negatives=7)
    assert torch.equal(a.sampling, b.sampling)
    assert _three_calls(a) == _three_calls(b)


def test_negatives_uniform_with_replacement_beyond_data_size():
    loss = _small(n_data=10, k=5000)
    negatives = loss._draw(torch.tensor([4, 7]))
    assert negatives.shape == (2, 5000)
    counts = torch.bincount(negatives.flatten(), minlength=10).float()
    # 10,000 uniform draws over 10 values: each count 1000 +/- 5 sd (sd = 30).
    assert (counts - 1000).abs().max() < 150
    assert int(loss.sampling[1]) == 1


def test_state_dict_resume_is_exact():
    a = _small()
    _three_calls(a)
    b = _small(seed=99)
    b.load_state_dict(a.state_dict())
    s, t, idx = _randn(6, 5, seed=7), _randn(6, 6, seed=8), torch.arange(10, 16)
    assert a(s, t, indices=idx).item() == b(s, t, indices=idx).item()
    assert torch.equal(a.teacher_memory, b.teacher_memory)


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_the_features_device(device):
    loss = _small().to(device)
    out = loss(_randn(4, 5).to(device), _randn(4, 6, seed=1).to(device), indices=torch.tensor([0, 1, 2, 3]))
    assert out.device.type == device and loss.student_memory.device.type == device


def test_half_precision_autocast_stays_finite():
    loss = _small(k=64)
    s, t = _randn(8, 5), _randn(8, 6, seed=1)
    want = _small(k=64)(s, t, indices=torch.arange(8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss(s.bfloat16(), t.bfloat16(), indices=torch.arange(8))
    assert got.dtype == torch.float32 and torch.isfinite(got)
    assert got.item() == pytest.approx(want.item(), rel=0.05)
    assert loss.student_memory.dtype == torch.float32


# ----------------------------------------------------------------------------- bad inputs


def test_missing_indices():
    with pytest.raises(ValueError, match="indices"):
        _small()(_randn(4, 5), _randn(4, 6))


@pytest.mark.parametrize(
    "indices, error, match",
    [
        (torch.tensor([0, 1, 2, 20]), ValueError, "num_samples=20"),
        (torch.tensor([-1, 1, 2, 3]), ValueError, "num_samples"),
        (torch.tensor([0, 1, 1, 3]), ValueError, "1 repeated"),
        (torch.tensor([0, 1, 2]), ValueError, r"shape \(4,\)"),
        (torch.tensor([[0, 1, 2, 3]]), ValueError, r"shape \(4,\)"),
        (torch.tensor([0.0, 1.0, 2.0, 3.0]), TypeError, "integer"),
        ([0, 1, 2, 3], TypeError, "list"),
    ],
)
def test_bad_indices(indices, error, match):
    loss = _small()
    memory = loss.student_memory.clone()
    with pytest.raises(error, match=match):
        loss(_randn(4, 5), _randn(4, 6), indices=indices)
    assert torch.equal(loss.student_memory, memory) and int(loss.sampling[1]) == 0


@pytest.mark.parametrize("s_shape, t_shape", [((4, 3), (4, 6)), ((4, 5), (4, 2)), ((4, 5), (3, 6)), ((5,), (4, 6))])
def test_wrong_feature_shapes(s_shape, t_shape):
    with pytest.raises(ValueError):
        _small()(_randn(*s_shape), _randn(*t_shape), indices=torch.arange(4))


@pytest.mark.parametrize(
    "kwargs, error, argument",
    [
        (dict(num_samples=0), ValueError, "num_samples"),
        (dict(num_samples=2.5), TypeError, "num_samples"),
        (dict(student_dim=0), ValueError, "student_dim"),
        (dict(embed_dim=-1), ValueError, "embed_dim"),
        (dict(num_negatives=0), ValueError, "num_negatives"),
        (dict(temperature=0.0), ValueError, "temperature"),
        (dict(momentum=1.0), ValueError, "momentum"),
        (dict(momentum="0.5"), TypeError, "momentum"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=1.5), TypeError, "seed"),
    ],
)
def test_constructor_validation(kwargs, error, argument):
    args = dict(student_dim=5, teacher_dim=6, num_samples=20) | kwargs
    with pytest.raises(error, match=argument):
        CRDLoss(**args)


def test_registry_passes_num_samples_only_where_taken():
    loss = losses.get("crd", student_dim=5, teacher_dim=6, num_samples=30)
    assert isinstance(loss, CRDLoss) and loss.num_samples == 30
    assert isinstance(losses.get("pkt", student_dim=5, teacher_dim=6, num_samples=30), losses.PKTLoss)
    assert "crd" in losses.available()
    # Losses that do not need indices accept and ignore them.
    s, t = _randn(4, 5), _randn(4, 5, seed=1)
    pkt = losses.get("pkt")
    assert pkt(s, t, indices=torch.arange(4)).item() == pkt(s, t).item()


# ----------------------------------------------------------------------------- training loop


@pytest.fixture(scope="module")
def teacher(digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    spec = T.TeacherSpec(model="digits_cnn", train=T.TrainConfig(epochs=1, batch_size=64, lr=1e-2))
    return T.train_teacher(spec, digits, root=root, quiet=True, device="cpu")


def test_student_training_with_crd_is_repeatable(digits, teacher, tmp_path):
    spec = T.StudentSpec(model="mlp", method="crd", train=T.TrainConfig(epochs=1, batch_size=256))
    a = T.train_student(spec, teacher, digits, root=tmp_path / "a", quiet=True, device="cpu")
    b = T.train_student(spec, teacher, digits, root=tmp_path / "b", quiet=True, device="cpu")
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    assert a.history == b.history and all(math.isfinite(r["transfer"]) for r in a.history)
