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


def test_check_count_and_check_positive():
    from pcoh._checks import check_count, check_positive

    assert check_count(np.int64(3), "n", 2) == 3 and type(check_count(np.int64(3), "n", 2)) is int
    with pytest.raises(TypeError, match=r"n must be an integer >= 1, got bool True"):
        check_count(True, "n")
    with pytest.raises(ValueError, match=r"n must be an integer >= 2, got 1"):
        check_count(1, "n", 2)
    assert check_positive(2, "t") == 2.0 and check_positive(0, "w", allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="t must be a positive finite number, got 0"):
        check_positive(0, "t")
    with pytest.raises(ValueError, match="w must be a non-negative finite number, got inf"):
        check_positive(float("inf"), "w", allow_zero=True)
    with pytest.raises(TypeError, match="t must be a positive number, got str"):
        check_positive("1", "t")


def test_config_rules():
    from pcoh._checks import check_name_list, check_path, check_seed, check_str, check_table, name_list

    assert check_str("a", "s") == "a" and check_str("", "s", empty=True) == ""
    with pytest.raises(ValueError, match="s must not be empty"):
        check_str("", "s")
    with pytest.raises(TypeError, match="s must be a string, got int 3"):
        check_str(3, "s")
    with pytest.raises(ValueError, match="without NUL"):
        check_path("a\0b", "p")
    with pytest.raises(TypeError, match=r"p must be a path \(a string\), got int 3"):
        check_path(3, "p")
    assert check_name_list("pc", "m") == ("pc",) and check_name_list(["a", "b"], "m") == ("a", "b")
    with pytest.raises(ValueError, match=r"m: \['a'\] given more than once"):
        check_name_list(["a", "b", "a"], "m")
    with pytest.raises(ValueError, match="m must name at least one entry"):
        check_name_list([], "m")
    assert check_table({"a": 1}, "t") == {"a": 1}
    with pytest.raises(TypeError, match="t must have names"):
        check_table({1: 2}, "t")
    assert name_list(range(7), limit=5) == "['0', '1', '2', '3', '4'] and 2 more"
    assert check_seed(None) is None and check_seed(2**32 - 1, maximum=2**32 - 1) == 2**32 - 1
    with pytest.raises(TypeError, match="seed must be an integer"):
        check_seed(None, optional=False)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 4294967295\]"):
        check_seed(2**32, maximum=2**32 - 1)
