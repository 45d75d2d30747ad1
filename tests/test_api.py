"""The public API: `from pcoh import *` gives exactly `pcoh.__all__`, and each name exists."""
import pcoh


def test_star_import_matches_all():
    namespace: dict = {}
    exec("from pcoh import *", namespace)
    namespace.pop("__builtins__")
    assert sorted(namespace) == sorted(pcoh.__all__)
    assert len(set(pcoh.__all__)) == len(pcoh.__all__)


def test_every_public_name_has_a_docstring():
    for name in pcoh.__all__:
        assert getattr(pcoh, name).__doc__, name
