"""Evaluation metrics against scikit-learn / brute-force references."""
import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.manifold import trustworthiness as sk_trust

from pcoh import evaluate as ev


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 6)) * 4
    y = np.repeat(np.arange(3), 30)
    x = centres[y] + rng.normal(size=(90, 6))
    return x, y


def test_knn_accuracy_matches_brute_force(blobs):
    x, y = blobs
    tr, te = np.arange(0, 90, 2), np.arange(1, 90, 2)
    acc = ev.knn_accuracy(x[tr], y[tr], x[te], y[te], k=3, metric="euclidean")
    d = cdist(x[te], x[tr])
    nearest = np.argsort(d, axis=1)[:, :3]
    votes = y[tr][nearest]
    pred = np.array([np.bincount(v, minlength=3).argmax() for v in votes])
    assert acc == pytest.approx((pred == y[te]).mean())


def test_knn_cosine_is_scale_invariant(blobs):
    x, y = blobs
    scale = np.random.default_rng(1).uniform(0.1, 10, size=(90, 1))
    a = ev.knn_accuracy(x[:60], y[:60], x[60:], y[60:], metric="cosine")
    b = ev.knn_accuracy(x[:60] * scale[:60], y[:60], x[60:] * scale[60:], y[60:], metric="cosine")
    assert a == b


def test_linear_probe_separable(blobs):
    x, y = blobs
    assert ev.linear_probe_accuracy(x[::2], y[::2], x[1::2], y[1::2]) == 1.0


def test_trustworthiness_and_continuity(blobs):
    x, _ = blobs
    low = x[:, :2]
    t = ev.trustworthiness(low, x, k=5, student_metric="euclidean", teacher_metric="euclidean")
    assert t == pytest.approx(sk_trust(x, low, n_neighbors=5))
    c = ev.continuity(low, x, k=5, student_metric="euclidean", teacher_metric="euclidean")
    assert c == pytest.approx(sk_trust(low, x, n_neighbors=5))
    assert ev.trustworthiness(x, x, k=5) == pytest.approx(1.0)


def test_linear_cka_properties(blobs):
    x, _ = blobs
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert ev.linear_cka(x, x) == pytest.approx(1.0)
    assert ev.linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0)
    assert 0.0 <= ev.linear_cka(x, rng.normal(size=x.shape)) < 0.5
    with pytest.raises(ValueError, match="same number of samples"):
        ev.linear_cka(x, x[:10])


def test_evaluate_model_row(blobs):
    x, y = blobs
    row, rho = ev.evaluate_model(x[:60], y[:60], x[60:], y[60:], x[60:], metric="euclidean",
                                 teacher_metric="euclidean", return_per_reference=True, n_boot=200)
    assert set(row) == set(ev.COLUMNS)
    assert row["pc_n"] == pytest.approx(1.0) and rho.shape == (30,)
    assert row["pc_n_low"] <= row["pc_n"] <= row["pc_n_high"]
    assert np.isnan(row["accuracy"])  # no logits given: not applicable


def test_bad_inputs(blobs):
    x, y = blobs
    with pytest.raises(ValueError, match="2-D"):
        ev.knn_accuracy(x[:, 0], y, x[:, 0], y)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ev.linear_probe_accuracy(bad, y, x, y)
    with pytest.raises(ValueError, match="metric"):
        ev.knn_accuracy(x, y, x, y, metric="manhattan")


def test_inputs_wrong_type_raise_type_error_wrong_value_value_error(blobs):
    x, y = blobs
    with pytest.raises(TypeError, match="k must be an integer"):
        ev.knn_accuracy(x, y, x, y, k=2.5)
    with pytest.raises(ValueError, match="k must be at most"):
        ev.knn_accuracy(x[:4], y[:4], x, y, k=5)
    with pytest.raises(ValueError, match="metric must be one of"):
        ev.knn_accuracy(x, y, x, y, metric="l1")
    with pytest.raises(ValueError, match="train_labels must hold one label per row"):
        ev.knn_accuracy(x, y[:-1], x, y)
    with pytest.raises(TypeError, match="train_features must hold numbers"):
        ev.linear_probe_accuracy(np.array([["a"]] * 90), y, x, y)
    with pytest.raises(ValueError, match="test_features must be 2-D"):
        ev.linear_probe_accuracy(x, y, x[0], y)
    with pytest.raises(ValueError, match="same number of samples"):
        ev.trustworthiness(x, x[:-1])
    with pytest.raises(ValueError, match="k must be an integer in"):
        ev.trustworthiness(x, x, k=45)
    with pytest.raises(ValueError, match="x contains NaN"):
        ev.linear_cka(np.full((4, 2), np.nan), np.ones((4, 2)))
