"""pcoh.methods: one registry read by the command line, the main job, the figures and training."""
from pathlib import Path

import nbformat
import pytest

from pcoh import experiment, losses, methods, plots, train
from pcoh.__main__ import build_parser


def test_every_registered_loss_is_a_choice_of_the_command_line():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "methods")
    assert sorted(action.choices) == methods.available()
    assert set(losses.available()) <= set(action.choices)
    assert "ce" in action.choices


def test_default_list_is_the_registry_order_of_existing_methods():
    expected = tuple(m.name for m in methods.METHODS.values()
                     if m.default and (m.loss is None or m.loss in losses.LOSSES))
    assert methods.default_methods() == expected == experiment.DEFAULT_METHODS
    assert experiment.DEFAULT_METHODS[0] == "pc" and "ce" in experiment.DEFAULT_METHODS


def test_colours_come_from_the_registry_and_are_distinct():
    assert plots.METHOD_COLORS == methods.colors()
    for name, m in methods.METHODS.items():
        assert plots.METHOD_COLORS[name] == m.color
    assert len(set(methods.colors().values())) == len(methods.colors())
    assert methods.color("pc (class-aware)") == methods.METHODS["pc"].color
    assert methods.color("nobody") == "#444444"


@pytest.mark.parametrize("mode", methods.MODES)
def test_allowed_modes(mode):
    for name, m in methods.METHODS.items():
        assert train.method_allows_mode(name, mode) == (mode in m.modes)
    assert not methods.allows_mode("kd", "class-unaware") and not methods.allows_mode("ce", "class-unaware")
    assert methods.allows_mode("crd", "class-unaware") and methods.allows_mode("crd", "class-aware")
    assert train.MODES == methods.MODES


def test_a_loss_outside_the_registry_follows_its_class(monkeypatch):
    class Logits(losses.TransferLoss):
        class_aware_only = True

    monkeypatch.setitem(losses.LOSSES, "my_logits", Logits)
    assert "my_logits" in methods.available()
    assert not methods.allows_mode("my_logits", "class-unaware") and methods.allows_mode("my_logits", "class-aware")


def test_get_unknown_name_lists_the_methods():
    assert methods.get("pc").loss == "pc"
    with pytest.raises(ValueError, match=r"method must be one of \['pc'"):
        methods.get("nope")


# --- the method table: one source (the registry), every copy checked against it ---------------------

ROOT = Path(__file__).resolve().parents[1]


def test_table_has_one_row_per_method_with_its_fields():
    lines = methods.table().splitlines()
    assert lines[0] == "| name | the student matches | modes | paper |"
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [r[0] for r in rows] == [f"`{name}`" for name in methods.METHODS]
    for row, m in zip(rows, methods.METHODS.values()):
        assert row[1] == m.matches and row[1]
        assert row[2] == ("both" if set(m.modes) == set(methods.MODES) else ", ".join(m.modes))
        assert row[3] == m.paper
    assert [line.split()[0] for line in methods.table("rst").splitlines()[3:-1]] == [
        f"``{name}``" for name in methods.METHODS]


def test_table_rejects_an_unknown_format():
    with pytest.raises(ValueError, match="fmt"):
        methods.table("html")


def test_readme_shows_the_generated_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- methods table:", 1)[1].split("<!-- end of methods table -->", 1)[0]
    assert block.split("\n", 1)[1].strip() == methods.table()


def test_methods_docstring_is_the_generated_table():
    assert methods.table("rst") in methods.__doc__


def test_notebook_03_reads_the_table_and_writes_none_by_hand():
    nb = nbformat.read(ROOT / "notebooks" / "03-transfer.ipynb", as_version=4)
    assert any(c.cell_type == "code" and "methods.table()" in c.source for c in nb.cells)
    assert not any(c.cell_type == "markdown" and "|---|" in c.source and "`pkt`" in c.source for c in nb.cells)


def test_losses_docstring_table_agrees_with_the_registry():
    """The losses' own table (with default weights) names the registry's losses, with the same papers."""
    rows = [line for line in losses.__doc__.splitlines() if line.startswith('``"')]
    named = {line.split('"')[1]: line for line in rows}
    assert set(named) == {m.loss for m in methods.METHODS.values() if m.loss is not None}
    for m in methods.METHODS.values():
        if m.loss is not None and m.name != "pc":
            assert m.paper in named[m.loss], m.name


def test_modes_are_defined_once():
    assert train.MODES is methods.MODES
