"""Set-up files agree with each other: environment.yml mirrors pyproject's dependencies."""
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {_name(r) for r in pip if not r.startswith("-e")} == wanted


def test_shipped_configs_are_valid():
    from pcoh.experiment import CONFIGS, ExperimentConfig, load_config

    names = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    assert names == ["cifar100_resnet32x4_resnet8x4", "cifar100_resnet32x4_shufflenetv2", "cifar100_wrn_40_2_mobilenetv2"]
    for name in names:
        cfg = ExperimentConfig(**load_config(name))
        assert cfg.dataset == "cifar100" and cfg.student_train.epochs == 240
        assert cfg.student_train.milestones == (150, 180, 210)


def test_ci_calls_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()


def test_toml_configs_read_with_tomli_where_tomllib_is_missing(tmp_path, monkeypatch):
    # Python 3.10 has no tomllib; pyproject declares tomli there, and load_config falls back to it.
    import types

    from pcoh.experiment import load_config

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "tomli; python_version < '3.11'" in dependencies
    calls = []
    fake = types.ModuleType("tomli")
    fake.TOMLDecodeError = tomllib.TOMLDecodeError
    fake.loads = lambda text: calls.append(text) or tomllib.loads(text)
    monkeypatch.setitem(sys.modules, "tomllib", None)  # import tomllib raises ImportError, as on 3.10
    monkeypatch.setitem(sys.modules, "tomli", fake)
    path = tmp_path / "c.toml"
    path.write_text('teacher = "tv:resnet18"\nseeds = 2\n')
    assert load_config(path) == {"teacher": "tv:resnet18", "seeds": 2} and len(calls) == 1
    path.write_text("seeds = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(path)
