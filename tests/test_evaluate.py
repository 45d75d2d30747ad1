"""Evaluation metrics against scikit-learn / brute-force references."""
import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.manifold import trustworthiness as sk_trust

from pcoh import coherence as coh
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


def _brute_trustworthiness(original, embedded, k):
    """T(k) = 1 - 2 / (n k (2n - 3k - 1)) sum_i sum_{j in U_k(i)} (r(i, j) - k), straight from the definition:
    U_k(i) = the embedding's k nearest neighbours of i that are not among the original space's,
    r(i, j) = rank of j among i's neighbours in the original space (nearest = 1)."""
    n = len(original)
    do = np.linalg.norm(original[:, None] - original[None], axis=-1)
    de = np.linalg.norm(embedded[:, None] - embedded[None], axis=-1)
    total = 0.0
    for i in range(n):
        others = [j for j in range(n) if j != i]
        by_orig = sorted(others, key=lambda j: (do[i, j], j))
        rank = {j: r + 1 for r, j in enumerate(by_orig)}
        near_orig = set(by_orig[:k])
        near_emb = sorted(others, key=lambda j: (de[i, j], j))[:k]
        total += sum(rank[j] - k for j in near_emb if j not in near_orig)
    return 1.0 - 2.0 / (n * k * (2 * n - 3 * k - 1)) * total


@pytest.mark.parametrize("k", [1, 3, 7])
def test_trustworthiness_and_continuity_brute_force_cosine(k):
    # Cosine on each side: the neighbours of L2-normalised rows.
    rng = np.random.default_rng(4)
    teacher = rng.normal(size=(24, 5))
    student = teacher[:, :3] + 0.5 * rng.normal(size=(24, 3))
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    t = ev.trustworthiness(student, teacher, k=k)
    c = ev.continuity(student, teacher, k=k)
    assert t == pytest.approx(_brute_trustworthiness(unit(teacher), unit(student), k))
    assert c == pytest.approx(_brute_trustworthiness(unit(student), unit(teacher), k))
    assert c == pytest.approx(sk_trust(unit(student), unit(teacher), n_neighbors=k))
    assert t != pytest.approx(c)  # the two really differ on this data


def test_score_embeddings(blobs):
    x, _ = blobs
    rng = np.random.default_rng(5)
    embeddings = {"same": 2.0 * x, "proj": x[:, :2], "noise": rng.normal(size=(len(x), 2))}
    frame, rho = ev.score_embeddings(x, embeddings, teacher_metric="euclidean", k=5, n_boot=200,
                                     return_per_reference=True)
    assert list(frame["embedding"]) == ["same", "proj", "noise"]
    assert list(frame["dim"]) == [6, 2, 2]
    row = frame.set_index("embedding")
    assert row.loc["same", "pc_n"] == pytest.approx(1.0)
    assert row.loc["same", "trustworthiness"] == pytest.approx(1.0)
    # Each column is the module's own measure, computed independently here.
    for name, e in embeddings.items():
        assert row.loc[name, "pc_n"] == pytest.approx(
            coh.perception_coherence(e, x, student_metric="euclidean", teacher_metric="euclidean"))
        assert rho[name].mean() == pytest.approx(row.loc[name, "pc_n"])
        assert row.loc[name, "trustworthiness"] == pytest.approx(sk_trust(x, e, n_neighbors=5))
        assert row.loc[name, "continuity"] == pytest.approx(sk_trust(e, x, n_neighbors=5))
        assert row.loc[name, "pc_n_low"] <= row.loc[name, "pc_n"] <= row.loc[name, "pc_n_high"]
    assert row.loc["noise", "pc_n"] < row.loc["proj", "pc_n"] < 1.0
    # One metric per name.
    mixed = ev.score_embeddings(x, {"a": x, "b": x}, metric={"a": "cosine", "b": "euclidean"}, k=5, n_boot=50)
    assert list(mixed["metric"]) == ["cosine", "euclidean"]
    assert mixed.loc[0, "pc_n"] != pytest.approx(mixed.loc[1, "pc_n"])


def test_score_embeddings_bad_inputs(blobs):
    x, _ = blobs
    with pytest.raises(TypeError, match="embeddings must be a dict"):
        ev.score_embeddings(x, [x])
    with pytest.raises(ValueError, match="at least one"):
        ev.score_embeddings(x, {})
    with pytest.raises(ValueError, match=r"embeddings\['a'\] must hold the teacher's 90 inputs, got 10 rows"):
        ev.score_embeddings(x, {"a": x[:10]})
    with pytest.raises(ValueError, match=r"embeddings\['a'\]: features must be 2-D"):
        ev.score_embeddings(x, {"a": x[:, 0]})
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, n / 2\)"):
        ev.score_embeddings(x, {"a": x}, k=45)
    with pytest.raises(ValueError, match="missing \\['b'\\]"):
        ev.score_embeddings(x, {"a": x, "b": x}, metric={"a": "cosine"})
    with pytest.raises(ValueError, match=r"metric must be one of \['cosine', 'euclidean', 'sqeuclidean'\]"):
        ev.score_embeddings(x, {"a": x}, metric="manhattan")


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
