"""pcoh._checks: a wrong type raises TypeError, a wrong value ValueError, the message names the argument."""
import numpy as np
import pytest
import torch

from pcoh import _checks as C


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3)])
def test_check_int_accepts_integers_and_returns_int(value):
    out = C.check_int(value, "k", minimum=1, maximum=3)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value", [True, 3.0, "3", None, [3]])
def test_check_int_rejects_non_integers_with_type_error(value):
    with pytest.raises(TypeError, match="k must be an integer"):
        C.check_int(value, "k")


@pytest.mark.parametrize("value", [0, 4])
def test_check_int_rejects_out_of_range_with_value_error(value):
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 3\], got"):
        C.check_int(value, "k", minimum=1, maximum=3)


def test_check_float_bounds_open_and_closed():
    assert C.check_float(1, "c", minimum=0, maximum=1) == 1.0
    with pytest.raises(ValueError, match=r"c must be a number in \(0, 1\)"):
        C.check_float(1, "c", minimum=0, maximum=1, strict=True)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="c must be finite"):
            C.check_float(bad, "c")
    for bad in (True, "0.5", None):
        with pytest.raises(TypeError, match="c must be a real number"):
            C.check_float(bad, "c")


def test_check_choice_lists_the_choices():
    assert C.check_choice("a", "kind", ["a", "b"]) == "a"
    with pytest.raises(ValueError, match=r"kind must be one of \['a', 'b'\], got 'c'"):
        C.check_choice("c", "kind", ["a", "b"])
    with pytest.raises(ValueError, match="kind must be one of"):
        C.check_choice([1], "kind", ["a"])  # unhashable: not a choice, no TypeError from `in`


def test_check_seed():
    assert C.check_seed(None) is None and C.check_seed(np.int64(4)) == 4
    with pytest.raises(TypeError, match="seed"):
        C.check_seed(1.0)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, inf\]"):
        C.check_seed(-1)  # numpy's generators take no negative seed


def test_as_array_from_tensor_list_and_array():
    t = torch.arange(6.0).reshape(3, 2)
    for x in (t, t.numpy(), t.tolist()):
        a = C.as_array(x, "x", ndim=2, columns=2)
        assert a.dtype == np.float64 and a.shape == (3, 2)
    with pytest.raises(ValueError, match=r"x must be 2-D \(n, d\), got shape \(6,\)"):
        C.as_array(np.arange(6), "x", ndim=2)
    with pytest.raises(ValueError, match="x must have 3 columns"):
        C.as_array(t, "x", columns=3)
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        C.as_array([1.0, np.nan], "x")
    assert np.isnan(C.as_array([1.0, np.nan], "x", finite=False)[1])
    for bad in (["a", "b"], [[1, 2], [3]], {"a": 1}, None):
        with pytest.raises(TypeError, match="x must"):
            C.as_array(bad, "x")


def test_as_features_keeps_float64_and_rejects_bad_input():
    assert C.as_features(np.ones((3, 2)), "f").dtype == torch.float64
    assert C.as_features(torch.ones(3, 2, dtype=torch.float16), "f").dtype == torch.float32
    with pytest.raises(TypeError, match="f must be a torch.Tensor or numpy array"):
        C.as_features([[1.0, 2.0]], "f")
    with pytest.raises(TypeError, match="f must hold real numbers"):
        C.as_features(torch.ones(3, 2, dtype=torch.bool), "f")
    with pytest.raises(ValueError, match=r"f must be 2-D"):
        C.as_features(torch.ones(3), "f")
    with pytest.raises(ValueError, match="f contains NaN or Inf"):
        C.as_features(torch.tensor([[1.0, float("inf")]]), "f")


def test_labels_indices_columns():
    assert C.as_labels(torch.tensor([1, 0]), "y", n=2).tolist() == [1, 0]
    with pytest.raises(ValueError, match="y must hold one label per row"):
        C.as_labels([1, 0], "y", n=3)
    with pytest.raises(ValueError, match=r"y must be 1-D \(n,\)"):
        C.as_labels([[1, 0]], "y")
    assert C.check_indices([0, 2], "refs", 3).dtype == np.int64
    with pytest.raises(TypeError, match="refs must be a sequence of integers"):
        C.check_indices([0.5], "refs", 3)
    with pytest.raises(ValueError, match=r"refs must hold indices in \[0, 3\)"):
        C.check_indices([3], "refs", 3)
    assert C.check_index(np.int64(2), "reference", 3) == 2
    with pytest.raises(ValueError, match=r"reference must be an index in \[0, 3\), got 3"):
        C.check_index(3, "reference", 3)
    import pandas as pd

    with pytest.raises(ValueError, match="frame must have a 'b' column"):
        C.check_columns(pd.DataFrame({"a": [1]}), ["a", "b"], "frame")
    with pytest.raises(TypeError, match="frame must be a pandas.DataFrame"):
        C.check_columns({"a": [1]}, ["a"], "frame")


def test_pairs_option():
    assert C.check_pairs_option(None) is None and C.check_pairs_option("auto") == "auto"
    assert C.check_pairs_option(np.int64(5)) == 5
    with pytest.raises(ValueError, match="n_pairs must be None"):
        C.check_pairs_option("auto", auto=False)
    with pytest.raises(TypeError, match="n_pairs must be an integer"):
        C.check_pairs_option(2.0)


def test_check_names():
    assert C.check_names("pc_n", "by") == ("pc_n",) and C.check_names(["a", "b"], "by") == ("a", "b")
    for bad in (3, ["a", 1], {"a": 1}, b"a"):
        with pytest.raises(TypeError, match="by must be a column name or a sequence of column names"):
            C.check_names(bad, "by")
