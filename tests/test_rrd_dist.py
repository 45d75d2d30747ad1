"""RRD and DIST: values written out from their formulas, gradients, invariances, RRD's queue, bad inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from pcoh import losses, methods
from pcoh.losses import DISTLoss, RRDLoss
from pcoh.losses.rrd import queue_length
from pcoh.models import ModelOutput


def _f(value) -> float:
    """A scalar tensor (with or without gradient) as a float."""
    return float(value.detach())


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --------------------------------------------------------------------------- RRD: hand-computed


def _identity_rrd(dim: int, queue_size: int, **kwargs) -> RRDLoss:
    """An RRD loss whose projections are the identity (no bias), in float64."""
    loss = RRDLoss(dim, dim, embed_dim=dim, queue_size=queue_size, **kwargs).double()
    with torch.no_grad():
        for lin in (loss.embed_student, loss.embed_teacher):
            lin.weight.copy_(torch.eye(dim, dtype=torch.float64))
            lin.bias.zero_()
    return loss


def _unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _rrd_by_hand(students, teachers, keys, tau_s=0.02, tau_t=0.1):
    """-1/n sum_i sum_k softmax_k(t_i.q_k / tau_t) log softmax_k(s_i.q_k / tau_s), in plain Python."""
    total = 0.0
    for s, t in zip(students, teachers):
        s, t = _unit(s), _unit(t)
        zt = [sum(a * b for a, b in zip(t, q)) / tau_t for q in keys]
        zs = [sum(a * b for a, b in zip(s, q)) / tau_s for q in keys]
        p = [math.exp(z) / sum(math.exp(y) for y in zt) for z in zt]
        log_q = [z - math.log(sum(math.exp(y) for y in zs)) for z in zs]
        total -= sum(pk * lk for pk, lk in zip(p, log_q))
    return total / len(students)


def test_rrd_value_by_hand_over_two_steps_with_a_wrapped_queue():
    loss = _identity_rrd(2, queue_size=3, student_temperature=0.5, teacher_temperature=0.25)
    s1, t1 = [[1.0, 0.0], [1.0, 1.0]], [[0.0, 2.0], [3.0, 4.0]]
    value = loss(torch.tensor(s1, dtype=torch.float64), torch.tensor(t1, dtype=torch.float64))
    # The batch is enqueued before the similarities: the keys are the batch's own teacher rows.
    keys = [_unit(t) for t in t1]
    assert _f(value) == pytest.approx(_rrd_by_hand(s1, t1, keys, 0.5, 0.25), abs=1e-12)
    s2, t2 = [[0.0, 1.0], [-1.0, 2.0]], [[1.0, 0.0], [-1.0, -1.0]]
    value = loss(torch.tensor(s2, dtype=torch.float64), torch.tensor(t2, dtype=torch.float64))
    # Three places: the second batch's first row goes to place 2, its second wraps to place 0.
    keys = [_unit(t2[1]), _unit(t1[1]), _unit(t2[0])]
    assert _f(value) == pytest.approx(_rrd_by_hand(s2, t2, keys, 0.5, 0.25), abs=1e-12)
    np.testing.assert_allclose(loss.queue.numpy(), np.array(keys), atol=1e-15)
    assert (int(loss.queue_ptr), int(loss.queue_count)) == (1, 3)


def test_rrd_default_temperatures_by_hand():
    loss = _identity_rrd(3, queue_size=8)
    s, t = _randn(4, 3, seed=1), _randn(4, 3, seed=2)
    value = loss(s, t)
    keys = [_unit(row) for row in t.tolist()]
    assert _f(value) == pytest.approx(_rrd_by_hand(s.tolist(), t.tolist(), keys), rel=1e-12)


def test_rrd_queue_order_and_length_after_several_steps():
    loss = _identity_rrd(2, queue_size=5)
    rows = [torch.tensor([[math.cos(a), math.sin(a)]], dtype=torch.float64) for a in np.linspace(0.1, 3.0, 8)]
    for step in range(4):  # 4 batches of 2: rows 0..7 go to places 0 1 2 3 4 0 1 2
        t = torch.cat(rows[2 * step:2 * step + 2])
        loss(_randn(2, 2, seed=step), t)
        assert int(loss.queue_count) == min(2 * (step + 1), 5)
    expected = torch.cat([rows[5], rows[6], rows[7], rows[3], rows[4]])
    torch.testing.assert_close(loss.queue, expected, atol=1e-15, rtol=0)
    assert int(loss.queue_ptr) == 8 % 5 and int(loss.queue_count) == 5
    # A batch larger than the queue: only its last 5 rows stay, in order from the write position.
    big = torch.cat([r * 1.0 for r in rows[:7]])
    loss(_randn(7, 2, seed=9), big)
    order = [(3 + j) % 5 for j in range(5)]
    torch.testing.assert_close(loss.queue[order], big[-5:], atol=1e-15, rtol=0)
    assert int(loss.queue_ptr) == 3 and int(loss.queue_count) == 5


def test_rrd_eval_mode_leaves_the_queue_and_state_dict_resumes():
    loss = RRDLoss(4, 6, embed_dim=8, queue_size=10).double()
    for step in range(3):
        loss(_randn(4, 4, seed=step), _randn(4, 6, seed=10 + step))
    state = {k: v.clone() for k, v in loss.state_dict().items()}
    loss.eval()
    s, t = _randn(4, 4, seed=20), _randn(4, 6, seed=21)
    first = loss(s, t)
    assert _f(loss(s, t)) == _f(first)
    for k, v in loss.state_dict().items():
        assert torch.equal(v, state[k]), k
    other = RRDLoss(4, 6, embed_dim=8, queue_size=10).double()
    other.load_state_dict(loss.state_dict())
    other.eval()
    assert _f(other(s, t)) == _f(first)
    with pytest.raises(ValueError, match="queue_size=11"):
        RRDLoss(4, 6, embed_dim=8, queue_size=11).double().load_state_dict(loss.state_dict())


def test_rrd_gradients_reach_the_student_and_its_projection_only():
    loss = RRDLoss(4, 6, embed_dim=8, num_samples=30).double()
    s = _randn(6, 4, seed=3).requires_grad_(True)
    t = _randn(6, 6, seed=4).requires_grad_(True)
    loss(s, t).backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert loss.embed_student.weight.grad.abs().sum() > 0
    assert loss.embed_teacher.weight.grad is None and not loss.embed_teacher.weight.requires_grad
    # The optimiser gets the student projection; the frozen teacher projection never moves.
    before = loss.embed_teacher.weight.clone()
    opt = torch.optim.AdamW([p for p in loss.parameters() if p.requires_grad], lr=0.1, weight_decay=0.5)
    opt.step()
    assert torch.equal(loss.embed_teacher.weight, before)


def test_rrd_gradcheck():
    loss = RRDLoss(3, 5, embed_dim=4, queue_size=7).double()
    for step in range(3):  # a queue with older entries, then frozen (eval) for repeated calls
        loss(_randn(3, 3, seed=step), _randn(3, 5, seed=30 + step))
    loss.eval()
    s, t = _randn(3, 3, seed=40).requires_grad_(True), _randn(3, 5, seed=41)
    assert torch.autograd.gradcheck(lambda x: loss(x, t), (s,), eps=1e-6, atol=1e-6)
    w = loss.embed_student.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: _with_weight(loss, x, s.detach(), t), (w,), eps=1e-6, atol=1e-6)


def _with_weight(loss, weight, s, t):
    """The loss as a function of the student projection's weight (functional call)."""
    params = {"embed_student.weight": weight}
    return torch.func.functional_call(loss, params, (s, t))


def test_rrd_invariant_to_the_scale_of_the_features_before_normalisation():
    loss = RRDLoss(4, 6, embed_dim=8, queue_size=12).double()
    with torch.no_grad():
        loss.embed_student.bias.zero_()
        loss.embed_teacher.bias.zero_()
    loss.eval()
    s, t = _randn(5, 4, seed=5), _randn(5, 6, seed=6)
    ref = _f(loss(s, t))
    for cs, ct in ((3.0, 1.0), (1.0, 0.01), (250.0, 7.0)):
        assert _f(loss(cs * s, ct * t)) == pytest.approx(ref, rel=1e-12)
    # With biases: scaling a projection (weight and bias) leaves its normalised output unchanged.
    loss = RRDLoss(4, 6, embed_dim=8, queue_size=12).double().eval()
    ref = _f(loss(s, t))
    with torch.no_grad():
        for lin, c in ((loss.embed_student, 5.0), (loss.embed_teacher, 0.2)):
            lin.weight.mul_(c)
            lin.bias.mul_(c)
    assert _f(loss(s, t)) == pytest.approx(ref, rel=1e-12)


def test_rrd_learns_to_match_the_teacher():
    """A learnable student feature matrix trained by RRD alone comes to rank the queue as the teacher."""
    torch.manual_seed(0)
    loss = RRDLoss(6, 6, embed_dim=6, queue_size=16).double()
    t = _randn(16, 6, seed=7)
    s = _randn(16, 6, seed=8).requires_grad_(True)
    opt = torch.optim.Adam([s, *loss.embed_student.parameters()], lr=0.05)
    first = None
    for _ in range(150):
        opt.zero_grad()
        value = loss(s, t)
        value.backward()
        opt.step()
        first = _f(value) if first is None else first
    assert _f(value) < 0.7 * first


def test_rrd_queue_length_rule():
    assert queue_length(50_000) == 16384  # CIFAR-100: the authors' length
    assert queue_length(1_281_167) == 16384
    assert queue_length(1_797) == 599 and queue_length(1_437) == 479 and queue_length(1_257) == 419
    assert queue_length(2) == 1 and queue_length(None) == 16384
    loss = losses.get("rrd", student_dim=8, teacher_dim=16, num_samples=1_257)
    assert isinstance(loss, RRDLoss) and loss.queue.shape == (419, 128)
    assert losses.get("rrd", student_dim=8, teacher_dim=16, num_samples=1_257, queue_size=50).queue_size == 50
    with pytest.raises(ValueError, match="num_samples"):
        queue_length(0)


@pytest.mark.parametrize(
    "kwargs, error, argument",
    [
        (dict(student_dim=0), ValueError, "student_dim"),
        (dict(teacher_dim=2.0), TypeError, "teacher_dim"),
        (dict(num_samples=0), ValueError, "num_samples"),
        (dict(embed_dim=True), TypeError, "embed_dim"),
        (dict(queue_size=0), ValueError, "queue_size"),
        (dict(queue_size=1.5), TypeError, "queue_size"),
        (dict(student_temperature=0.0), ValueError, "student_temperature"),
        (dict(teacher_temperature="0.1"), TypeError, "teacher_temperature"),
        (dict(teacher_temperature=float("nan")), ValueError, "teacher_temperature"),
    ],
)
def test_rrd_bad_arguments(kwargs, error, argument):
    with pytest.raises(error, match=argument):
        RRDLoss(**{"student_dim": 4, "teacher_dim": 6, **kwargs})


def test_rrd_bad_inputs():
    loss = RRDLoss(4, 6, embed_dim=8, queue_size=10).double()
    s, t = _randn(5, 4), _randn(5, 6)
    with pytest.raises(ValueError, match=r"student_dim=4.*teacher_dim=6"):
        loss(_randn(5, 3), t)
    with pytest.raises(ValueError, match="same number of samples"):
        loss(s, t[:-1])
    bad = t.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        loss(s, bad)
    with pytest.raises(TypeError):
        loss(s.numpy(), t)
    assert int(loss.queue_count) == 0  # nothing was enqueued by the refused calls


# --------------------------------------------------------------------------- DIST


def _pearson(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    den = math.sqrt(sum((x - ma) ** 2 for x in a)) * math.sqrt(sum((y - mb) ** 2 for y in b))
    return num / (den + 1e-8)


def _softmax(row, tau):
    e = [math.exp(v / tau) for v in row]
    return [v / sum(e) for v in e]


def _dist_by_hand(zs, zt, beta, gamma, tau):
    ys = [_softmax(r, tau) for r in zs]
    yt = [_softmax(r, tau) for r in zt]
    inter = 1 - sum(_pearson(a, b) for a, b in zip(ys, yt)) / len(ys)
    cols = range(len(ys[0]))
    intra = 1 - sum(_pearson([r[c] for r in ys], [r[c] for r in yt]) for c in cols) / len(cols)
    return tau * tau * (beta * inter + gamma * intra)


def test_dist_value_by_hand():
    zs = [[1.0, 0.0, -1.0], [0.5, 2.0, 0.0], [0.0, 0.0, 3.0]]
    zt = [[2.0, 1.0, 0.0], [0.0, 1.0, 0.5], [1.0, -1.0, 2.0]]
    s, t = torch.tensor(zs, dtype=torch.float64), torch.tensor(zt, dtype=torch.float64)
    assert _f(DISTLoss()(s, t)) == pytest.approx(_dist_by_hand(zs, zt, 2.0, 2.0, 4.0), rel=1e-12)
    value = DISTLoss(beta=1.0, gamma=0.5, temperature=1.0)(s, t)
    assert _f(value) == pytest.approx(_dist_by_hand(zs, zt, 1.0, 0.5, 1.0), rel=1e-12)


def test_dist_terms_match_scipy_pearson():
    zs, zt = _randn(7, 5, seed=11), _randn(7, 5, seed=12)
    ys, yt = torch.softmax(zs / 4, 1).numpy(), torch.softmax(zt / 4, 1).numpy()
    rows = np.mean([stats.pearsonr(a, b)[0] for a, b in zip(ys, yt)])
    cols = np.mean([stats.pearsonr(a, b)[0] for a, b in zip(ys.T, yt.T)])
    assert _f(DISTLoss(beta=1.0, gamma=0.0)(zs, zt)) == pytest.approx(16 * (1 - rows), rel=1e-6)
    assert _f(DISTLoss(beta=0.0, gamma=1.0)(zs, zt)) == pytest.approx(16 * (1 - cols), rel=1e-6)


def test_dist_invariant_to_a_common_shift_of_the_logits_and_zero_for_equal_logits():
    zs, zt = _randn(6, 10, seed=13), _randn(6, 10, seed=14)
    loss = DISTLoss()
    ref = _f(loss(zs, zt))
    shift_s, shift_t = _randn(6, 1, seed=15) * 10, _randn(6, 1, seed=16) * 10
    assert _f(loss(zs + shift_s, zt + shift_t)) == pytest.approx(ref, rel=1e-10)
    assert _f(loss(zs + 3.0, zt - 7.0)) == pytest.approx(ref, rel=1e-10)
    # Equal logits: each correlation is |a|^2 / (|a|^2 + 1e-8) for the centred a (the reference's
    # eps), so the loss is near 0 but not exactly 0 when the probabilities vary little.
    y = torch.softmax(zt / 4, dim=1)
    near_one = lambda m: (m - m.mean(1, keepdim=True)).pow(2).sum(1)  # noqa: E731
    rows, cols = near_one(y), near_one(y.T)
    expected = 16 * (2 * (1 - (rows / (rows + 1e-8)).mean()) + 2 * (1 - (cols / (cols + 1e-8)).mean()))
    assert _f(loss(zt, zt)) == pytest.approx(_f(expected), rel=1e-6)
    assert 0 <= _f(loss(zt, zt)) < 1e-3 * ref


def test_dist_gradcheck_and_no_teacher_gradient():
    zs, zt = _randn(4, 5, seed=17).requires_grad_(True), _randn(4, 5, seed=18).requires_grad_(True)
    loss = DISTLoss(temperature=2.0)
    assert torch.autograd.gradcheck(lambda x: loss(x, zt.detach()), (zs,), eps=1e-6, atol=1e-6)
    loss(zs, zt).backward()
    assert zt.grad is None and zs.grad.abs().sum() > 0


def test_dist_uses_logits_and_runs_class_aware_only():
    feats_s, feats_t = _randn(5, 6, seed=19), _randn(5, 9, seed=20)
    logits_s, logits_t = _randn(5, 10, seed=21), _randn(5, 10, seed=22)
    loss = DISTLoss()
    value = loss(ModelOutput(feats_s, logits_s), ModelOutput(feats_t, logits_t))
    assert _f(value) == _f(loss(logits_s, logits_t))
    assert DISTLoss.class_aware_only and DISTLoss.uses == "logits"
    assert not methods.allows_mode("dist", "class-unaware") and methods.allows_mode("dist", "class-aware")
    assert methods.allows_mode("rrd", "class-unaware") and methods.allows_mode("rrd", "class-aware")
    assert isinstance(losses.get("dist", student_dim=8, teacher_dim=16, num_samples=100), DISTLoss)


def test_dist_bad_inputs():
    loss = DISTLoss()
    with pytest.raises(ValueError, match="number of classes"):
        loss(_randn(5, 10), _randn(5, 11))
    with pytest.raises(ValueError, match="at least 2 classes"):
        loss(_randn(5, 1), _randn(5, 1))
    with pytest.raises(ValueError, match="at least 2 samples"):
        loss(_randn(1, 10), _randn(1, 10))
    for kwargs, error, argument in ((dict(beta=-1.0), ValueError, "beta"), (dict(gamma="2"), TypeError, "gamma"),
                                    (dict(temperature=0.0), ValueError, "temperature")):
        with pytest.raises(error, match=argument):
            DISTLoss(**kwargs)
