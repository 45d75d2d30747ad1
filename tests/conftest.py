"""Fixtures shared by several test files."""
import pytest

from pcoh import data as D


@pytest.fixture(scope="module")
def digits():
    """The scikit-learn digits, split as every run splits them (loaded once per test module)."""
    return D.load("digits")
