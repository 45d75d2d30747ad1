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


def _results(shift=0.0):
    import pandas as pd

    rows = [{"student": "s", "mode": "-", "method": "teacher", "seed": 0, "pc_n": 1.0, "knn_accuracy": 0.99}]
    for seed, (a, b) in enumerate([(0.90, 0.80), (0.91, 0.82), (0.92, 0.81)]):
        rows.append({"student": "s", "mode": "class-unaware", "method": "pc", "seed": seed, "pc_n": a - shift,
                     "knn_accuracy": 0.98})
        rows.append({"student": "s", "mode": "class-unaware", "method": "pkt", "seed": seed, "pc_n": b,
                     "knn_accuracy": 0.98})
    return pd.DataFrame(rows)


def test_compare_against_a_reference_folder(tmp_path, capsys):
    from pcoh.__main__ import _compare, _reference

    (tmp_path / "digits").mkdir()
    _results().to_csv(tmp_path / "digits" / "results.csv", index=False)
    reference = _reference(str(tmp_path), "digits")
    assert reference[0] == str(tmp_path / "digits" / "results.csv")
    assert _compare(_results(), reference) == 0
    assert "every verdict agrees; 6 of 6 means within tolerance" in capsys.readouterr().out
    # pc falls to pkt's level: its mean leaves the tolerance and its verdict (and pkt's) changes.
    assert _compare(_results(shift=0.1), reference) == 1
    out = capsys.readouterr().out
    assert "verdicts that differ from" in out and "pc_n s class-unaware pc: no difference detected vs pkt" in out
    assert "reference: better vs pkt (best)" in out and "means outside their tolerance" in out


def test_compare_names_a_missing_reference_before_any_training(tmp_path, capsys):
    from pcoh.__main__ import main

    assert main(["--compare", str(tmp_path / "nowhere"), "--check", "--device", "cpu",
                 "--cache", str(tmp_path / "c"), "--output", str(tmp_path / "o")]) == 2
    assert "--compare: no results.csv in" in capsys.readouterr().err
