"""Distillation baselines of pcoh.losses: values against loop-based references, invariances, gradients."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from pcoh import losses
from pcoh.dissimilarity import pairwise
from pcoh.losses import CCLoss, FitNetLoss, KDLoss, PKTLoss, RKDLoss, SPLoss, TransferLoss

BASELINES = ["fitnet", "rkd", "pkt", "sp", "cc", "kd"]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


def _orthogonal(d: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(_randn(d, d, seed=seed))
    return q


def _build(name: str, d_s: int = 6, d_t: int = 9, dtype=torch.float64) -> TransferLoss:
    loss = losses.get(name, student_dim=d_s, teacher_dim=d_t)
    return loss.to(dtype)


# --------------------------------------------------------------------------- loop references


def _huber(a: float, b: float) -> float:
    d = abs(a - b)
    return 0.5 * d * d if d < 1.0 else d - 0.5


def _vec(x, i):
    return [float(v) for v in x[i]]


def _dot(a, b):
    return sum(p * q for p, q in zip(a, b))


def _sub(a, b):
    return [p - q for p, q in zip(a, b)]


def _norm(a):
    return math.sqrt(_dot(a, a))


def _unit(a):
    n = _norm(a)
    return [0.0] * len(a) if n == 0 else [v / n for v in a]


def rkd_loops(s, t, wd=25.0, wa=50.0):
    def dist_term(x):
        n = x.shape[0]
        d = [[_norm(_sub(_vec(x, i), _vec(x, j))) for j in range(n)] for i in range(n)]
        off = [d[i][j] for i in range(n) for j in range(n) if i != j]
        mu = sum(off) / len(off)
        return [[d[i][j] / mu for j in range(n)] for i in range(n)]

    def angle_term(x):
        n = x.shape[0]
        out = {}
        for j in range(n):
            for i in range(n):
                for k in range(n):
                    e_ij = _unit(_sub(_vec(x, i), _vec(x, j)))
                    e_kj = _unit(_sub(_vec(x, k), _vec(x, j)))
                    out[j, i, k] = _dot(e_ij, e_kj)
        return out

    n = s.shape[0]
    ds, dt = dist_term(s), dist_term(t)
    dist = sum(_huber(ds[i][j], dt[i][j]) for i in range(n) for j in range(n)) / n**2
    a_s, a_t = angle_term(s), angle_term(t)
    angle = sum(_huber(a_s[key], a_t[key]) for key in a_s) / n**3
    return wd * dist + wa * angle


def rkd_repdistiller(s, t, wd=25.0, wa=50.0):
    """The reference's RKD (RepDistiller), with its (n, n, d) difference tensor."""

    def pdist(e):
        sq = e.pow(2).sum(dim=1)
        res = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * e @ e.t()).clamp(min=1e-12).sqrt().clone()
        res[range(len(e)), range(len(e))] = 0
        return res

    t_d = pdist(t)
    t_d = t_d / t_d[t_d > 0].mean()
    s_d = pdist(s)
    s_d = s_d / s_d[s_d > 0].mean()
    return wd * F.smooth_l1_loss(s_d, t_d) + wa * rkd_repdistiller_angle(s, t)


def rkd_repdistiller_angle(s, t):
    """The reference's angle term: (n, n, d) differences, F.normalize, bmm -> n^3 cosines."""

    def angles(x):
        diff = x.unsqueeze(0) - x.unsqueeze(1)
        e = F.normalize(diff, p=2, dim=2)
        return torch.bmm(e, e.transpose(1, 2)).view(-1)

    return F.smooth_l1_loss(angles(s), angles(t))


def pkt_loops(s, t, eps=1e-7):
    def probs(x):
        n = x.shape[0]
        rows = []
        for i in range(n):
            xi = _vec(x, i)
            rows.append([v / (_norm(xi) + eps) for v in xi])
        sim = [[(_dot(rows[i], rows[j]) + 1.0) / 2.0 for j in range(n)] for i in range(n)]
        return [[sim[i][j] / sum(sim[i]) for j in range(n)] for i in range(n)]

    n = s.shape[0]
    ps, pt = probs(s), probs(t)
    return sum(pt[i][j] * math.log((pt[i][j] + eps) / (ps[i][j] + eps)) for i in range(n) for j in range(n)) / n**2


def sp_loops(s, t):
    def sim(x):
        n = x.shape[0]
        g = [[_dot(_vec(x, i), _vec(x, j)) for j in range(n)] for i in range(n)]
        return [_unit(row) for row in g]

    n = s.shape[0]
    gs, gt = sim(s), sim(t)
    return sum((gs[i][j] - gt[i][j]) ** 2 for i in range(n) for j in range(n)) / n**2


def cc_loops(s, t, gamma=0.4, p_order=2):
    def corr(x):
        n = x.shape[0]
        f = [_unit(_vec(x, i)) for i in range(n)]
        c = [[0.0] * n for _ in range(n)]
        for i in range(n):
            for j in range(n):
                inner = _dot(f[i], f[j])
                c[i][j] = sum(
                    math.exp(-2 * gamma) * (2 * gamma) ** p / math.factorial(p) * inner**p for p in range(p_order + 1)
                )
        return c

    n = s.shape[0]
    cs, ct = corr(s), corr(t)
    return sum((cs[i][j] - ct[i][j]) ** 2 for i in range(n) for j in range(n)) / n**2


def kd_loops(s, t, temperature=4.0):
    def softmax(row):
        m = max(row)
        e = [math.exp((v - m) / temperature) for v in row]
        z = sum(e)
        return [v / z for v in e]

    n = s.shape[0]
    total = 0.0
    for i in range(n):
        ps, pt = softmax(_vec(s, i)), softmax(_vec(t, i))
        total += sum(q * math.log(q / p) for p, q in zip(ps, pt))
    return total / n * temperature**2


def fitnet_loops(loss: FitNetLoss, s, t):
    w = loss.regressor.weight.detach()
    b = loss.regressor.bias.detach()
    n, d_t = t.shape
    total = 0.0
    for i in range(n):
        for k in range(d_t):
            pred = float(b[k]) + sum(float(w[k, c]) * float(s[i, c]) for c in range(s.shape[1]))
            total += (pred - float(t[i, k])) ** 2
    return total / (n * d_t)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("wd, wa", [(25.0, 50.0), (1.0, 0.0), (0.0, 1.0), (3.0, 7.0)])
def test_rkd_matches_loops(wd, wa):
    s, t = _randn(5, 4, seed=1), _randn(5, 7, seed=2) * 3.0
    got = RKDLoss(wd, wa)(s, t)
    assert got.item() == pytest.approx(rkd_loops(s, t, wd, wa), rel=1e-10, abs=1e-12)


def test_rkd_huber_beyond_one():
    # Large distance ratios exercise the linear branch of the smooth L1.
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [50.0, 50.0]], dtype=torch.float64)
    t = _randn(4, 3, seed=3)
    assert RKDLoss()(s, t).item() == pytest.approx(rkd_loops(s, t), rel=1e-10)


def test_rkd_angle_matches_reference_tensor_formula_with_duplicates():
    s, t = _randn(6, 5, seed=4), _randn(6, 3, seed=5)
    s[3] = s[1]  # duplicated rows: the reference's normalize of a zero difference gives cos 0
    t[5] = t[0]
    s[2] = 0.0
    got = RKDLoss(distance_weight=0.0, angle_weight=1.0)(s, t)
    assert got.item() == pytest.approx(rkd_repdistiller_angle(s, t).item(), rel=1e-10, abs=1e-14)
    assert got.item() == pytest.approx(rkd_loops(s, t, 0.0, 1.0), rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rkd_matches_reference_implementation(dtype):
    g = _gen(50)
    s = (torch.relu(torch.randn(32, 64, generator=g, dtype=torch.float64)) * 5 + 2).to(dtype)
    t = torch.relu(torch.randn(32, 96, generator=g, dtype=torch.float64)).to(dtype)
    s[5] = s[3]
    s[7] = s[3]
    s[9] = 0.0
    t[10] = t[11]
    ref = rkd_repdistiller(s.double(), t.double()).item()
    tol = 1e-5 if dtype == torch.float64 else 1e-4  # the reference's 1e-6 duplicates enter its mean
    assert RKDLoss()(s, t).item() == pytest.approx(ref, rel=tol)


def test_rkd_angles_tensor_entries():
    x = _randn(5, 3, seed=6)
    x[4] = x[2]
    xc = x - x.mean(0)
    a = RKDLoss._angles(xc, pairwise(xc, "euclidean"))
    assert a.shape == (5, 5, 5)
    for j in range(5):
        for i in range(5):
            for k in range(5):
                e_ij = _unit(_sub(_vec(x, i), _vec(x, j)))
                e_kj = _unit(_sub(_vec(x, k), _vec(x, j)))
                assert a[j, i, k].item() == pytest.approx(_dot(e_ij, e_kj), abs=1e-12)


def test_rkd_float32_translation_robust():
    # Features far from the origin: centring keeps the Gram-based angles accurate in float32.
    s64, t64 = _randn(8, 16, seed=7), _randn(8, 16, seed=8)
    ref = RKDLoss()(s64, t64).item()
    got = RKDLoss()((s64 + 300.0).float(), (t64 - 300.0).float()).item()
    assert got == pytest.approx(ref, rel=1e-3, abs=1e-4)


def test_rkd_wide_features_no_d_factor():
    # d = 200k with n = 8: the reference's (n, n, d) difference tensor would be 100 MB.
    s, t = _randn(8, 200_000, seed=9, dtype=torch.float32), _randn(8, 1000, seed=10, dtype=torch.float32)
    s.requires_grad_(True)
    loss = RKDLoss()(s, t)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_pkt_matches_loops():
    s, t = _randn(5, 4, seed=11), _randn(5, 7, seed=12)
    assert PKTLoss()(s, t).item() == pytest.approx(pkt_loops(s, t), rel=1e-10, abs=1e-15)
    assert PKTLoss(eps=1e-3)(s, t).item() == pytest.approx(pkt_loops(s, t, 1e-3), rel=1e-10, abs=1e-15)


def test_sp_matches_loops():
    s, t = _randn(5, 4, seed=13), _randn(5, 7, seed=14)
    assert SPLoss()(s, t).item() == pytest.approx(sp_loops(s, t), rel=1e-10, abs=1e-15)


@pytest.mark.parametrize("gamma, p_order", [(0.4, 2), (1.0, 3), (0.25, 1)])
def test_cc_matches_loops(gamma, p_order):
    s, t = _randn(5, 4, seed=15), _randn(5, 7, seed=16)
    got = CCLoss(gamma, p_order)(s, t)
    assert got.item() == pytest.approx(cc_loops(s, t, gamma, p_order), rel=1e-10, abs=1e-16)


def test_cc_high_order_is_gaussian_kernel():
    x = _randn(6, 5, seed=17)
    f = F.normalize(x, dim=1)
    gauss = torch.exp(-0.4 * torch.cdist(f, f).pow(2))
    assert torch.allclose(CCLoss(0.4, 25)._correlation(x), gauss, atol=1e-12)


def test_kd_matches_loops_and_reference():
    s, t = _randn(5, 10, seed=18) * 3, _randn(5, 10, seed=19) * 3
    got = KDLoss()(s, t).item()
    assert got == pytest.approx(kd_loops(s, t), rel=1e-10)
    ref = F.kl_div(F.log_softmax(s / 4, dim=1), F.softmax(t / 4, dim=1), reduction="sum") * 16 / s.shape[0]
    assert got == pytest.approx(ref.item(), rel=1e-10)
    assert KDLoss(1.5)(s, t).item() == pytest.approx(kd_loops(s, t, 1.5), rel=1e-10)


def test_fitnet_matches_loops():
    loss = FitNetLoss(4, 3).double()
    s, t = _randn(5, 4, seed=20), _randn(5, 3, seed=21)
    assert loss(s, t).item() == pytest.approx(fitnet_loops(loss, s, t), rel=1e-10)


# --------------------------------------------------------------------------- zero when they agree


def test_rkd_zero_for_similarity_transform():
    t = _randn(6, 5, seed=22)
    s = 2.5 * t @ _orthogonal(5, seed=23) + 7.0
    assert RKDLoss()(s, t).item() == pytest.approx(0.0, abs=1e-12)
    # embedding into a wider space preserves distances and angles too
    s_wide = torch.cat([t, torch.zeros(6, 3, dtype=t.dtype)], dim=1) * 0.1
    assert RKDLoss()(s_wide, t).item() == pytest.approx(0.0, abs=1e-12)


def test_pkt_zero_for_positive_rescale_and_rotation():
    t = _randn(6, 5, seed=24)
    assert PKTLoss()(3.0 * t, t).item() == pytest.approx(0.0, abs=1e-12)
    assert PKTLoss()(0.5 * t @ _orthogonal(5, seed=25), t).item() == pytest.approx(0.0, abs=1e-12)
    assert PKTLoss()(t, t).item() == 0.0


def test_sp_zero_for_orthogonal_map():
    t = _randn(6, 5, seed=26)
    assert SPLoss()(t @ _orthogonal(5, seed=27), t).item() == pytest.approx(0.0, abs=1e-14)
    assert SPLoss()(4.0 * t, t).item() == pytest.approx(0.0, abs=1e-14)


def test_kd_zero_for_equal_logits():
    t = _randn(6, 10, seed=28)
    assert KDLoss()(t.clone(), t).item() == 0.0
    # softmax is shift-invariant per row
    assert KDLoss()(t + 5.0, t).item() == pytest.approx(0.0, abs=1e-13)


def test_fitnet_zero_when_regressor_maps_exactly():
    loss = FitNetLoss(4, 3).double()
    w, b = _randn(3, 4, seed=29), _randn(3, seed=30)
    with torch.no_grad():
        loss.regressor.weight.copy_(w)
        loss.regressor.bias.copy_(b)
    s = _randn(6, 4, seed=31)
    t = s @ w.T + b
    assert loss(s, t).item() == pytest.approx(0.0, abs=1e-25)


def test_cc_zero_for_identical_normalised_features():
    t = _randn(6, 5, seed=32)
    assert CCLoss()(2.0 * t, t).item() == 0.0
    assert CCLoss()(t @ _orthogonal(5, seed=33), t).item() == pytest.approx(0.0, abs=1e-14)
    assert CCLoss(p_order=0)(_randn(6, 3, seed=34), t).item() == pytest.approx(0.0, abs=1e-16)


def test_losses_are_positive_on_unrelated_inputs():
    s, t = _randn(6, 6, seed=35), _randn(6, 9, seed=36)
    for name in BASELINES:
        loss = _build(name)
        if name == "kd":
            value = loss(_randn(6, 10, seed=37), _randn(6, 10, seed=38))
        else:
            value = loss(s, t)
        assert value.dim() == 0 and value.item() > 0, name


# --------------------------------------------------------------------------- gradients


def _inputs(name, dtype=torch.float64, n=6):
    if name == "kd":
        return _randn(n, 10, seed=40, dtype=dtype), _randn(n, 10, seed=41, dtype=dtype)
    return _randn(n, 6, seed=40, dtype=dtype), _randn(n, 9, seed=41, dtype=dtype)


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_finite_with_duplicates_and_zero_rows(name, dtype):
    s, t = _inputs(name, dtype)
    s[2] = s[0]
    s[4] = 0.0
    t[3] = t[1]
    t[5] = 0.0
    s.requires_grad_(True)
    loss = _build(name, dtype=dtype)
    value = loss(s, t)
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(s.grad).all()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in loss.parameters())


@pytest.mark.parametrize("name", BASELINES)
def test_gradients_finite_for_collapsed_student(name):
    s, t = _inputs(name)
    s = s[:1].repeat(6, 1).requires_grad_(True)
    value = _build(name)(s, t)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(s.grad).all()


@pytest.mark.parametrize("name", BASELINES)
def test_gradcheck(name):
    s, t = _inputs(name, n=4)
    loss = _build(name)
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: loss(x, t), (s,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", BASELINES)
def test_teacher_receives_no_gradient(name):
    s, t = _inputs(name)
    s.requires_grad_(True)
    t.requires_grad_(True)
    value = _build(name)(s, t)
    value.backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_fitnet_regressor_parameters_reach_the_optimiser():
    loss = FitNetLoss(6, 9)
    params = list(loss.parameters())
    assert len(params) == 2
    assert any(p is loss.regressor.weight for p in params)
    assert any(p is loss.regressor.bias for p in params)
    s, t = _randn(8, 6, seed=42, dtype=torch.float32), _randn(8, 9, seed=43, dtype=torch.float32)
    opt = torch.optim.SGD(loss.parameters(), lr=0.1)
    first = loss(s, t)
    first.backward()
    assert loss.regressor.weight.grad is not None
    opt.step()
    assert loss(s, t).item() < first.item()


# --------------------------------------------------------------------------- registry and attributes


def test_registry_lookups():
    for name, cls in [("fitnet", FitNetLoss), ("rkd", RKDLoss), ("pkt", PKTLoss), ("sp", SPLoss), ("cc", CCLoss), ("kd", KDLoss)]:
        assert losses.LOSSES[name] is cls
        assert name in losses.available()
        assert isinstance(losses.get(name, student_dim=32, teacher_dim=128), cls)
    fit = losses.get("fitnet", student_dim=32, teacher_dim=128)
    assert (fit.student_dim, fit.teacher_dim) == (32, 128)
    assert fit.regressor.weight.shape == (128, 32)
    assert isinstance(losses.get("rkd"), RKDLoss)
    rkd = losses.get("rkd", student_dim=32, teacher_dim=128, angle_weight=2.0)
    assert rkd.angle_weight == 2.0 and rkd.distance_weight == 25.0
    assert losses.get("kd", temperature=2.0).temperature == 2.0


def test_unknown_name_lists_names():
    with pytest.raises(ValueError) as info:
        losses.get("attention")
    for name in ["pc", *BASELINES]:
        assert repr(name) in str(info.value)


def test_weights_and_flags():
    expected = {"fitnet": 100.0, "rkd": 1.0, "pkt": 30000.0, "sp": 3000.0, "cc": 0.02, "kd": 0.9}
    for name, weight in expected.items():
        cls = losses.LOSSES[name]
        assert cls.default_weight == weight
        assert cls.ce_weight == (0.1 if name == "kd" else 1.0)
        assert cls.class_aware_only == (name == "kd")
        assert cls.uses == ("logits" if name == "kd" else "features")
    assert TransferLoss.ce_weight == 1.0
    assert losses.LOSSES["pc"].ce_weight == 1.0


def test_model_output_selection():
    feats_s, feats_t = _randn(5, 6, seed=44), _randn(5, 9, seed=45)
    logits_s, logits_t = _randn(5, 10, seed=46), _randn(5, 10, seed=47)
    out_s = SimpleNamespace(features=feats_s, logits=logits_s)
    out_t = SimpleNamespace(features=feats_t, logits=logits_t)
    assert KDLoss()(out_s, out_t).item() == KDLoss()(logits_s, logits_t).item()
    assert RKDLoss()(out_s, out_t).item() == RKDLoss()(feats_s, feats_t).item()


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("name", BASELINES)
def test_bad_inputs(name):
    loss = _build(name)
    s, t = _inputs(name)
    with pytest.raises(ValueError, match="same number of samples"):
        loss(s, t[:-1])
    with pytest.raises(ValueError, match="2-D"):
        loss(s[0], t)
    with pytest.raises(ValueError, match="2-D"):
        loss(s, t[None])
    bad = s.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        loss(bad, t)
    bad = t.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        loss(s, bad)
    with pytest.raises(TypeError):
        loss(s.long(), t)
    with pytest.raises(TypeError):
        loss(s.numpy(), t)


def test_fitnet_width_mismatch_names_expected_widths():
    loss = FitNetLoss(6, 9).double()
    with pytest.raises(ValueError, match=r"student_dim=6.*teacher_dim=9"):
        loss(_randn(5, 7), _randn(5, 9))
    with pytest.raises(ValueError, match=r"student_dim=6.*teacher_dim=9"):
        loss(_randn(5, 6), _randn(5, 8))


def test_kd_class_mismatch():
    with pytest.raises(ValueError, match="number of classes"):
        KDLoss()(_randn(5, 10), _randn(5, 11))


@pytest.mark.parametrize(
    "factory, error, argument",
    [
        (lambda: FitNetLoss(0, 4), ValueError, "student_dim"),
        (lambda: FitNetLoss(4, -1), ValueError, "teacher_dim"),
        (lambda: FitNetLoss(4.0, 4), TypeError, "student_dim"),
        (lambda: FitNetLoss(4, True), TypeError, "teacher_dim"),
        (lambda: RKDLoss(distance_weight=-1.0), ValueError, "distance_weight"),
        (lambda: RKDLoss(angle_weight=float("nan")), ValueError, "angle_weight"),
        (lambda: RKDLoss(angle_weight="50"), TypeError, "angle_weight"),
        (lambda: PKTLoss(eps=0.0), ValueError, "eps"),
        (lambda: PKTLoss(eps=None), TypeError, "eps"),
        (lambda: CCLoss(gamma=-0.4), ValueError, "gamma"),
        (lambda: CCLoss(p_order=-1), ValueError, "p_order"),
        (lambda: CCLoss(p_order=2.0), TypeError, "p_order"),
        (lambda: KDLoss(temperature=0.0), ValueError, "temperature"),
        (lambda: KDLoss(temperature=float("inf")), ValueError, "temperature"),
        (lambda: KDLoss(temperature="4"), TypeError, "temperature"),
    ],
)
def test_constructor_validation(factory, error, argument):
    with pytest.raises(error, match=argument):
        factory()
