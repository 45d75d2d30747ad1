"""The run cache (pcoh.runs): atomic writes, safe loading, quarantine, locks, signals."""
import copy
import errno
import hashlib
import json
import os
import pickle
import re
import signal
from pathlib import Path

import pytest
import torch
from torch import nn

from pcoh import models, runs
from pcoh import interrupts
from pcoh import files


class _Evil:
    """Unpickling this calls ``open(marker, "w")``: the file appears if anything runs it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _good_state():
    m = nn.Linear(3, 2)
    opt = torch.optim.Adam(m.parameters())
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [2, 4])
    m(torch.randn(4, 3)).sum().backward()
    opt.step()
    sched.step()
    return {"model": m.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "rng": torch.get_rng_state(), "history": [{"epoch": 1, "loss": 0.5}], "epoch": 1, "loss": {}}


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


# ----------------------------------------------------------------------------- writing
def test_atomic_save_round_trip_through_safe_loading(tmp_path):
    state = _good_state()
    files.atomic_save(state, tmp_path / "c.pt")
    assert _same(files.load_checkpoint(tmp_path / "c.pt"), state)
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_a_write_failing_midway_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "checkpoint.pt"
    files.atomic_save({"epoch": 1, "w": torch.ones(1000)}, target)
    before = target.read_bytes()
    real_save = torch.save

    def half_then_disk_full(obj, f):
        import io

        buf = io.BytesIO()
        real_save(obj, buf)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])  # half the bytes reach the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_disk_full)
    with pytest.raises(OSError, match="No space"):
        files.atomic_save({"epoch": 2, "w": torch.zeros(1000)}, target)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert files.load_checkpoint(target)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left


def test_a_json_write_failing_before_the_rename_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "history.json"
    files.write_json([{"epoch": 1}], target)

    def fail(*args):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        files.write_json([{"epoch": 1}, {"epoch": 2}], target)
    monkeypatch.undo()
    assert files.read_json(target) == [{"epoch": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]


def test_run_key_is_the_sha256_of_the_sorted_settings():
    expected = hashlib.sha256(json.dumps({"format": 1, "a": 1, "b": [2]}, sort_keys=True).encode()).hexdigest()[:12]
    assert runs.run_key({"b": [2], "a": 1}) == expected
    assert runs.run_dir("root", "teacher", expected) == Path("root") / "runs" / f"teacher-{expected}"


# ----------------------------------------------------------------------------- reading
def _damaged(tmp_path):
    ok = tmp_path / "ok.pt"
    torch.save({"model": {"w": torch.ones(500)}}, ok)
    data = ok.read_bytes()
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(500)}, legacy, _use_new_zipfile_serialization=False)
    files = {
        "truncated": data[: len(data) // 2],
        "first 10 bytes": data[:10],
        "empty": b"",
        "random bytes": bytes(range(256)) * 3,
        "text": b"not a checkpoint at all\n",
        "truncated legacy": legacy.read_bytes()[: legacy.stat().st_size // 2],
    }
    out = {}
    for name, content in files.items():
        p = tmp_path / (name.replace(" ", "_") + ".pt")
        p.write_bytes(content)
        out[name] = p
    return out


def test_damaged_files_raise_corrupt_file_error(tmp_path):
    for name, path in _damaged(tmp_path).items():
        with pytest.raises(files.CorruptFileError, match=re.escape(str(path))):
            files.load_checkpoint(path)
    with pytest.raises(files.CorruptFileError, match="folder"):
        files.load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError):
        files.load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("layout", ["zip", "plain pickle"])
def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path, layout):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"model": {"w": torch.ones(2)}, "x": _Evil(marker)}
    if layout == "zip":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    with pytest.raises(files.UnsafeCheckpointError, match="refused.*open"):
        files.load_checkpoint(path)
    assert not marker.exists()
    # The file is really harmful: an unsafe load creates the marker (so the test above can fail).
    if layout == "zip":
        torch.load(path, weights_only=False)
    else:
        with open(path, "rb") as f:
            pickle.load(f)
    assert marker.exists()


def test_a_whole_pickled_model_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(nn.Sequential(nn.Linear(2, 2)), path)
    with pytest.raises(files.UnsafeCheckpointError, match="torch.nn.modules.container.Sequential"):
        files.load_checkpoint(path)


def test_read_json_names_a_damaged_file(tmp_path):
    p = tmp_path / "config.json"
    p.write_text('{"kind": "teach')
    with pytest.raises(files.CorruptFileError, match="config.json"):
        files.read_json(p)
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(files.CorruptFileError):
        files.read_json(p)


# ----------------------------------------------------------------------------- load_weights
class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 4)
        self.head = nn.Linear(4, 2)


@pytest.mark.parametrize("wrap", ["plain", "model", "state_dict", "module-prefix"])
def test_load_weights_accepts_the_usual_layouts(tmp_path, wrap):
    src = _Net()
    sd = src.state_dict()
    obj = {"plain": sd, "model": {"model": sd, "epoch": 240, "accuracy": torch.tensor(79.4)},
           "state_dict": {"state_dict": sd}, "module-prefix": {f"module.{k}": v for k, v in sd.items()}}[wrap]
    torch.save(obj, tmp_path / "w.pt")
    dst = _Net()
    models.load_weights(dst, tmp_path / "w.pt")
    assert _same(dst.state_dict(), sd)


def test_load_weights_names_missing_unexpected_and_reshaped_keys(tmp_path):
    sd = _Net().state_dict()
    bad = {k: v for k, v in sd.items() if not k.startswith("head")}
    bad["extra.weight"] = torch.zeros(1)
    bad["body.weight"] = torch.zeros(5, 3)
    torch.save({"model": bad}, tmp_path / "w.pt")
    with pytest.raises(ValueError) as err:
        models.load_weights(_Net(), tmp_path / "w.pt", what="teacher_checkpoint")
    message = str(err.value)
    assert message.startswith("teacher_checkpoint:")
    assert "missing keys 2 (head.weight, head.bias)" in message
    assert "unexpected keys 1 (extra.weight)" in message
    assert "body.weight (5, 3) instead of (4, 3)" in message
    assert "\n" not in message


def test_load_weights_refuses_what_is_not_a_state_dict(tmp_path):
    torch.save([torch.ones(2)], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="must be a state dict or a dict with a 'model' state dict"):
        models.load_weights(_Net(), tmp_path / "list.pt")
    with pytest.raises(FileNotFoundError, match="teacher"):
        models.load_weights(_Net(), tmp_path / "nope.pt", what="teacher")


# ----------------------------------------------------------------------------- quarantine
def test_quarantine_moves_aside_with_a_counter_and_one_line(tmp_path):
    p = tmp_path / "final.pt"
    for i in range(3):
        p.write_bytes(f"damaged {i}".encode())
        with pytest.warns(files.CacheWarning) as record:
            moved = files.quarantine(p, f"{p}: damaged\nsecond line")
        assert len(record) == 1
        message = str(record[0].message)
        assert "\n" not in message and "final.pt" in message and moved.name in message
        assert not p.exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["final.pt.corrupt", "final.pt.corrupt.1", "final.pt.corrupt.2"]
    assert (tmp_path / "final.pt.corrupt.1").read_bytes() == b"damaged 1"  # nothing lost


# ----------------------------------------------------------------------------- locks
def test_run_lock_is_exclusive_and_released(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    folder = tmp_path / "runs" / "teacher-x"
    with runs.run_lock(folder):
        fd = os.open(folder / ".lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(folder / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- signals
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_become_training_interrupted(signum, status):
    before = signal.getsignal(signum)
    with pytest.raises(interrupts.TrainingInterrupted) as err:
        with interrupts.Interrupts():
            os.kill(os.getpid(), signum)
            for _ in range(10_000_000):  # the handler runs between bytecodes
                pass
    assert err.value.signum == signum and err.value.exit_status == status
    assert isinstance(err.value, KeyboardInterrupt)
    assert signal.getsignal(signum) is before


def test_a_signal_during_a_checkpoint_write_waits_for_the_write(tmp_path):
    written = []
    with pytest.raises(interrupts.TrainingInterrupted):
        with interrupts.Interrupts() as caught:
            with caught.hold():
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(100_000):
                    pass
                files.atomic_save({"epoch": 3}, tmp_path / "c.pt")
                written.append(True)
    assert written == [True] and files.load_checkpoint(tmp_path / "c.pt") == {"epoch": 3}


def test_messages_of_interruption_and_divergence_name_the_run():
    path = Path("data/runs/teacher-abc")
    text = str(interrupts.TrainingInterrupted(signal.SIGTERM, path=path, epoch=3, epochs=10, desc="teacher mlp"))
    assert "SIGTERM" in text and "epoch 3 of 10" in text and str(path) in text
    text = str(runs.TrainingDiverged("teacher mlp", path, 4, 3, {"epoch": 4, "loss": float("nan")}))
    assert "teacher-abc" in text and "epoch 4" in text and "last finite epoch is 3" in text and "loss=nan" in text


# ----------------------------------------------------------------------------- the package
def test_every_torch_load_in_the_package_is_weights_only():
    root = Path(runs.__file__).parent
    calls = []
    for path in root.rglob("*.py"):
        text = path.read_text()
        for match in re.finditer(r"torch\.load\(", text):
            depth, i = 1, match.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            calls.append((path.name, text[match.start():i]))
    assert calls, "expected at least the one in pcoh/runs.py"
    for name, call in calls:
        assert "weights_only=True" in call, f"{name}: {call}"


# ----------------------------------------------------------------------------- one commit point
_KILLED_WRITER = r"""
import os, sys
from pathlib import Path
from pcoh import files
folder = Path(sys.argv[1])
real = os.replace
count = [0]
def replace(src, dst):
    real(src, dst)
    if Path(dst).parent == folder and not Path(dst).name.startswith(files.JOURNAL_PREFIX):
        count[0] += 1
        if count[0] == 1:
            os._exit(137)  # as kill -9 between two renames: nothing runs after this
os.replace = replace
files.write_files({folder / "results.csv": b"run 2 table", folder / "summary.md": b"run 2 summary"})
"""


def test_a_set_of_files_killed_between_two_renames_is_completed_never_mixed(tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "out"
    files.write_files({folder / "results.csv": b"run 1 table", folder / "summary.md": b"run 1 summary"})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(folder)], env=env, capture_output=True)
    assert done.returncode == 137, done.stderr
    on_disk = {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}
    assert on_disk == {"results.csv": b"run 2 table", "summary.md": b"run 1 summary"}  # what kill -9 left
    with runs.output_lock(folder):  # the next job to write here completes the committed set first
        pass
    on_disk = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != runs.OUTPUT_LOCK}
    assert on_disk == {"results.csv": b"run 2 table", "summary.md": b"run 2 summary"}
    assert files.recover(folder) == 0


def test_a_set_interrupted_before_its_commit_point_keeps_the_previous_files(tmp_path, monkeypatch):
    folder = tmp_path / "out"
    files.write_files({folder / "a": b"1", folder / "b": b"1"})
    real = files._atomic_write

    def fail(path, write):
        if Path(path).name.startswith(files.JOURNAL_PREFIX):
            raise OSError(28, "No space left on device")
        return real(path, write)

    monkeypatch.setattr(files, "_atomic_write", fail)
    with pytest.raises(OSError):
        files.write_files({folder / "a": b"2", folder / "b": b"2"})
    assert sorted(p.name for p in folder.iterdir()) == ["a", "b"]
    assert (folder / "a").read_bytes() == (folder / "b").read_bytes() == b"1"


# ----------------------------------------------------------------------------- a folder holds its own run
def test_a_run_folder_holding_another_run_is_trained_again_not_loaded(tmp_path):
    path = tmp_path / "runs" / "teacher-abc"
    torch.manual_seed(0)
    other = nn.Linear(3, 2)
    runs.cached_run(path, {"model": "other"}, other, "cpu", True, lambda: [{"epoch": 1}])
    assert files.read_json(path / "config.json") == {"model": "other"}
    torch.manual_seed(1)
    mine = nn.Linear(3, 2)
    initial = copy.deepcopy(mine.state_dict())
    calls = []

    def train():
        calls.append(1)
        return [{"epoch": 1, "mine": True}]

    with pytest.warns(files.CacheWarning, match="holds another run"):
        history, cached = runs.cached_run(path, {"model": "mine"}, mine, "cpu", True, train)
    assert calls and not cached and history == [{"epoch": 1, "mine": True}]
    assert all(torch.equal(mine.state_dict()[k], initial[k]) for k in initial)  # never the other run's weights
    assert files.read_json(path / "config.json") == {"model": "mine"}
    assert (path / "final.pt.corrupt").exists()  # the other run is kept, aside
    # The same folder asked for again: its own run, loaded.
    history, cached = runs.cached_run(path, {"model": "mine"}, nn.Linear(3, 2), "cpu", True, train)
    assert cached and len(calls) == 1


def test_a_run_finished_before_final_pt_held_its_configuration_is_checked_by_config_json(tmp_path):
    path = tmp_path / "runs" / "teacher-abc"
    net = nn.Linear(3, 2)
    runs.finish(path, net, [{"epoch": 1}])  # the older layout: no configuration inside
    files.write_json({"model": "mine"}, path / "config.json")
    assert runs.cached_run(path, {"model": "mine"}, nn.Linear(3, 2), "cpu", True, lambda: [])[1]
    files.write_json({"model": "other"}, path / "config.json")
    with pytest.warns(files.CacheWarning, match="another run"):
        assert not runs.cached_run(path, {"model": "mine"}, nn.Linear(3, 2), "cpu", True, lambda: [])[1]


# ----------------------------------------------------------------------------- files by content
def test_a_file_is_hashed_once_per_version_and_again_when_replaced_in_place(tmp_path, monkeypatch):
    from pcoh import digests

    path = tmp_path / "teacher.pt"
    path.write_bytes(b"A" * 1000)
    expected = hashlib.sha256(b"A" * 1000).hexdigest()
    assert digests.file_sha256(path, cache=tmp_path / "cache") == expected
    digests._MEMO.clear()  # a new process: the table in the cache answers
    reads = []
    real = digests._hash_file
    monkeypatch.setattr(digests, "_hash_file", lambda p: reads.append(p) or real(p))
    assert digests.file_sha256(path, cache=tmp_path / "cache") == expected and not reads
    st = path.stat()
    path.write_bytes(b"B" * 1000)  # in place: same inode, same size, time set back (cp -p)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_ino, path.stat().st_size, path.stat().st_mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)
    assert digests.file_sha256(path, cache=tmp_path / "cache") == hashlib.sha256(b"B" * 1000).hexdigest()
    assert len(reads) == 1
