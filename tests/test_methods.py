"""pcoh.methods: one registry read by the command line, the main job, the figures and training."""
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
