"""The loss settings of a run (:class:`pcoh.specs.LossSettings`): checked once, at the spec or the
configuration, and the one thing training builds the loss from."""
import pytest

from pcoh import losses
from pcoh.config import ExperimentConfig
from pcoh.specs import LossSettings, StudentSpec


def test_a_spec_carries_its_checked_loss_settings():
    spec = StudentSpec("mlp", "pc", "class-aware", weight=2, loss_kwargs={"regularization_strength": 0.5})
    assert spec.loss == LossSettings("pc", 2, {"regularization_strength": 0.5})
    assert spec.loss.transfer_weight == 2.0 and spec.loss.ce_weight == 1.0


def test_the_weights_default_to_the_loss_class():
    kd = LossSettings("kd")
    assert (kd.transfer_weight, kd.ce_weight) == (losses.LOSSES["kd"].default_weight, losses.LOSSES["kd"].ce_weight)
    assert not LossSettings("ce").has_loss and LossSettings("ce").transfer_weight == 0.0


def test_an_argument_the_loss_does_not_take_fails_at_the_spec():
    with pytest.raises(TypeError, match="loss argument 'strength' of the 'pc' loss is not one the loss takes.*regularization_strength"):
        StudentSpec("mlp", "pc", loss_kwargs={"strength": 0.5})
    with pytest.raises(TypeError, match="loss argument 'num_samples' of the 'pc' loss is given by the run"):
        StudentSpec("mlp", "pc", loss_kwargs={"num_samples": 10})


def test_the_configuration_names_the_faulty_key():
    with pytest.raises(TypeError, match=r"^loss_kwargs\.pc: loss argument 'strength'"):
        ExperimentConfig(loss_kwargs={"pc": {"strength": 0.5}}, device="cpu")
    with pytest.raises(ValueError, match=r"^weights\.pc: weight must be a positive"):
        ExperimentConfig(weights={"pc": -1.0}, device="cpu")


def test_the_loss_is_built_from_the_settings():
    loss = LossSettings("pc", kwargs={"regularization_strength": 0.5}).build(student_dim=4, teacher_dim=8,
                                                                            num_samples=20)
    assert isinstance(loss, losses.PerceptionCoherenceLoss) and loss.regularization_strength == 0.5
    with pytest.raises(ValueError, match="regularization_strength"):  # values: the loss's constructor
        LossSettings("pc", kwargs={"regularization_strength": -1.0}).build(student_dim=4, teacher_dim=8, num_samples=20)
