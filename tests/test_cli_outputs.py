"""Where the main job writes: beside the tables in an untracked folder, unless --figures says otherwise."""
from pathlib import Path

from pcoh.__main__ import _config, build_parser


def _cfg(*argv):
    return _config(build_parser().parse_args(list(argv)))


def test_defaults_write_into_an_untracked_folder_figures_beside_the_tables():
    cfg = _cfg()
    assert (cfg.output, cfg.figures) == ("results/latest", "results/latest/digits")
    # The default folder is ignored by git, so a user's run modifies no tracked file.
    ignored = (Path(__file__).resolve().parents[1] / ".gitignore").read_text().splitlines()
    assert "results/latest/" in ignored


def test_output_alone_takes_the_figures_along(tmp_path):
    cfg = _cfg("--output", str(tmp_path))
    assert Path(cfg.figures) == tmp_path / "digits"


def test_figures_given_wins(tmp_path):
    cfg = _cfg("--output", str(tmp_path / "t"), "--figures", str(tmp_path / "f"))
    assert Path(cfg.figures) == tmp_path / "f" and Path(cfg.output) == tmp_path / "t"


def test_a_config_file_with_output_only_behaves_the_same(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(f"output: {tmp_path / 'out'}\n")
    assert Path(_cfg("--config", str(path)).figures) == tmp_path / "out" / "digits"
    path.write_text(f"output: {tmp_path / 'out'}\nfigures: {tmp_path / 'figs'}\n")
    assert Path(_cfg("--config", str(path)).figures) == tmp_path / "figs"
