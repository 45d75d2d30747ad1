"""pcoh.embedding: Procrustes alignment against known transforms, UMAP panels of the same inputs."""
import numpy as np
import pytest
import torch

from pcoh.dissimilarity import pairwise
from pcoh.embedding import align_procrustes, nearest_neighbors, umap_embedding, umap_embeddings


def _rotation(angle: float, reflect: bool = False) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    q = np.array([[c, -s], [s, c]])
    return q @ np.diag([1.0, -1.0]) if reflect else q


@pytest.mark.parametrize("reflect", [False, True])
def test_align_procrustes_undoes_rotation_reflection_scale_and_shift(reflect):
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(50, 2))
    moved = 3.7 * ref @ _rotation(1.1, reflect) + np.array([5.0, -2.0])
    np.testing.assert_allclose(align_procrustes(moved, ref), ref, atol=1e-10)


def test_align_procrustes_keeps_the_shape_of_the_embedding():
    rng = np.random.default_rng(1)
    ref, other = rng.normal(size=(40, 2)), rng.normal(size=(40, 2))
    out = align_procrustes(other, ref)
    # Only a similarity transform: pairwise distance ratios are unchanged.
    d_in = np.linalg.norm(other[:, None] - other[None], axis=-1)
    d_out = np.linalg.norm(out[:, None] - out[None], axis=-1)
    ratio = d_out[d_in > 0] / d_in[d_in > 0]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-10)
    np.testing.assert_allclose(out.mean(axis=0), ref.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(out - out.mean(0)), np.linalg.norm(ref - ref.mean(0)))


def test_align_procrustes_is_the_best_rotation_or_reflection():
    rng = np.random.default_rng(2)
    ref, other = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    err = np.sum((align_procrustes(other, ref) - ref) ** 2)
    # Brute force over every rotation and reflection at the same scale and centre.
    oc, rc = other - other.mean(0), ref - ref.mean(0)
    unit = oc / np.linalg.norm(oc) * np.linalg.norm(rc)
    brute = min(np.sum((unit @ _rotation(a, f) - rc) ** 2)
                for a in np.linspace(0, 2 * np.pi, 3601) for f in (False, True))
    assert err <= brute + 1e-9
    assert err == pytest.approx(brute, rel=1e-4)


@pytest.mark.parametrize("embedding, reference, match", [
    (np.zeros((5, 2)), np.ones((6, 2)), "same shape"),
    (np.zeros(5), np.ones(5), "2-D"),
    (np.ones((5, 2)), np.random.default_rng(0).normal(size=(5, 2)), "single repeated point"),
    (np.full((5, 2), np.nan), np.ones((5, 2)), "NaN"),
])
def test_align_procrustes_rejects_bad_input(embedding, reference, match):
    with pytest.raises(ValueError, match=match):
        align_procrustes(embedding, reference)


def test_umap_embedding_rejects_too_few_points():
    with pytest.raises(ValueError, match="n_neighbors"):
        umap_embedding(np.random.default_rng(0).normal(size=(10, 4)), n_neighbors=15)


def test_umap_embeddings_are_seeded_umaps_aligned_to_the_reference():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 30)
    x = (rng.normal(size=(3, 8))[labels] * 4 + rng.normal(size=(90, 8))).astype(np.float32)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    rows = np.arange(0, 90, 2)  # a subsample: every other input
    kwargs = dict(n_neighbors=10, n_epochs=30)
    out = umap_embeddings({"teacher": x, "student": x @ q}, rows=rows, **kwargs)
    assert list(out) == ["teacher", "student"]
    teacher = umap_embedding(x[rows], **kwargs)
    np.testing.assert_array_equal(out["teacher"], teacher)  # the reference is left as it is
    np.testing.assert_allclose(out["student"], align_procrustes(umap_embedding((x @ q)[rows], **kwargs), teacher))
    # A rotation keeps every cosine dissimilarity: each class lands where the teacher put it.
    centres = {k: np.stack([e[labels[rows] == c].mean(0) for c in range(3)]) for k, e in out.items()}
    nearest = np.linalg.norm(centres["student"][:, None] - centres["teacher"][None], axis=-1).argmin(axis=1)
    np.testing.assert_array_equal(nearest, np.arange(3))


@pytest.mark.parametrize("kwargs, match", [
    (dict(features={}), "at least one"),
    (dict(features={"a": np.ones((20, 3))}, reference="b"), "reference"),
    (dict(features={"a": np.ones((20, 3)), "b": np.ones((21, 3))}), "same inputs"),
])
def test_umap_embeddings_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        umap_embeddings(**kwargs)


def test_nearest_neighbors_matches_brute_force():
    x = np.random.default_rng(3).normal(size=(40, 5))
    for metric in ("cosine", "euclidean"):
        d = pairwise(torch.from_numpy(x), metric).numpy()
        for ref in (0, 17, 39):
            expected = [j for j in np.argsort(d[ref], kind="stable") if j != ref][:7]
            np.testing.assert_array_equal(nearest_neighbors(x, ref, k=7, metric=metric), expected)


def test_nearest_neighbors_breaks_ties_by_index_and_skips_the_reference():
    x = np.array([[1.0, 0.0]] * 5 + [[0.0, 1.0]])
    np.testing.assert_array_equal(nearest_neighbors(x, 2, k=5), [0, 1, 3, 4, 5])


@pytest.mark.parametrize("reference, k, error, match", [
    (10, 3, ValueError, "reference"), (-1, 3, ValueError, "reference"), (0, 0, ValueError, "k must"),
    (0, 10, ValueError, "k must"), (True, 3, TypeError, "reference"), (0, 2.0, TypeError, "k must"),
    ("0", 3, TypeError, "reference"),
])
def test_nearest_neighbors_rejects_bad_input(reference, k, error, match):
    with pytest.raises(error, match=match):
        nearest_neighbors(np.random.default_rng(0).normal(size=(10, 3)), reference, k=k)


@pytest.mark.parametrize("kwargs, error", [({"n_neighbors": 2.5}, TypeError), ({"n_neighbors": 1}, ValueError),
                                           ({"random_state": "0"}, TypeError)])
def test_umap_embedding_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        umap_embedding(np.random.default_rng(0).normal(size=(30, 3)), **kwargs)


def test_align_procrustes_rejects_non_numbers():
    with pytest.raises(TypeError, match="embedding must hold numbers"):
        align_procrustes(np.array([["a", "b"]] * 3), np.ones((3, 2)))
