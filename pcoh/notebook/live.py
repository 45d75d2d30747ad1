"""Notebook 10's live training: train a student in a background thread and redraw one figure per epoch.

:class:`LiveTraining` holds the digits teacher of the main job (trained here, or loaded from the
run cache after ``make run``), its test features and their 2-D view, and the runs trained so far.
:meth:`LiveTraining.controls` gives the panel: method, epochs and batch size, Train, Stop and
Save buttons, a progress bar (epoch, loss, time left) and the figure, an image redrawn after each
epoch through the training callback of :func:`pcoh.train.train_student`:

- PC_n and kNN accuracy of every run so far against the epoch (epoch 0: the untrained student);
- the distribution of the per-reference Spearman correlations of each run's latest epoch;
- the teacher's test embedding in 2-D (PCA) and, beside it, the last two runs' embeddings, each
  fitted by PCA and aligned to the teacher's (Procrustes), so that from epoch to epoch the points
  move into the teacher's neighbourhoods rather than jump.

Training runs in a thread, so the kernel stays free; Stop sets the event that
:func:`~pcoh.train.train_student` checks after every batch. Runs are written to a scratch
folder; :meth:`LiveTraining.save` copies the finished ones into the run cache.
"""
from __future__ import annotations

import copy
import dataclasses
import io
import os
import shutil
import tempfile
import threading
import time
from typing import Optional

import numpy as np

from .. import methods as _methods
from .. import runs as _runs
from .._checks import check_bool, check_choice, check_int
from ..coherence import per_reference_spearman
from ..embedding import align_procrustes
from ..evaluate import knn_accuracy
from ..specs import as_dict
from ..train import StudentSpec, TrainedModel, predict, resolve_device, run_dir, train_student, train_teacher
from .controls import SAVED_COPY_NOTE, saved_copy
from .workspace import _smoke, experiment_config

__all__ = ["LiveTraining", "live_methods", "presenting"]


def presenting() -> bool:
    """True when ``PCOH_PRESENT`` is set to anything but ``""``/``"0"`` (``make present`` sets it):
    the notebook is shown as a page to present, and skips what only an unattended run needs."""
    return os.environ.get("PCOH_PRESENT", "") not in ("", "0")


def live_methods() -> list:
    """The methods a class-unaware student can be trained with live: PC first, then the baselines."""
    return [m for m in _methods.default_methods() if _methods.allows_mode(m, "class-unaware")]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _pca2(x: np.ndarray, metric) -> np.ndarray:
    """The first two principal components (of the unit rows, for a cosine dissimilarity)."""
    x = _unit(x) if metric == "cosine" else x
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T


@dataclasses.dataclass
class _Run:
    method: str
    label: str
    spec: StudentSpec
    epochs: list = dataclasses.field(default_factory=list)  # one dict per measured epoch, epoch 0 first
    rho: Optional[np.ndarray] = None
    xy: Optional[np.ndarray] = None
    result: Optional[TrainedModel] = None
    status: str = "training"


class LiveTraining:
    """The teacher, the measures and the runs of notebook 10.

    Parameters
    ----------
    smoke_mode : bool, optional
        Default the smoke switch (``PCOH_SMOKE``): the notebooks' tiny teacher budget.
    model : str, default "digits_cnn"
        The student architecture.
    device : str, default "cpu"
    quiet : bool, default False
        Hide the teacher's progress bar (shown when it has to be trained).
    """

    def __init__(self, smoke_mode: bool | None = None, *, model: str = "digits_cnn", device: str = "cpu",
                 quiet: bool = False):
        from ..experiment import load_data, teacher_spec

        self.smoke = _smoke(smoke_mode)
        self.cfg = experiment_config(self.smoke)
        self.model = model
        self.device = resolve_device(device)
        quiet = check_bool(quiet, "quiet")
        self.data = load_data(self.cfg)
        tspec = teacher_spec(self.cfg, self.data)
        self.teacher_key = tspec.key()
        self.teacher = train_teacher(tspec, self.data, root=self.cfg.cache, device=self.device, quiet=quiet)
        t_train, _, self.y_train = predict(self.teacher.model, self.data.train)
        self.t_test, _, self.y_test = predict(self.teacher.model, self.data.test)
        self.y_train, self.y_test = self.y_train.numpy(), self.y_test.numpy()
        self.teacher_knn = knn_accuracy(t_train, self.y_train, self.t_test, self.y_test,
                                        metric=self.cfg.teacher_metric)
        self.teacher_xy = _pca2(self.t_test.numpy(), self.cfg.teacher_metric)
        self.scratch = tempfile.mkdtemp(prefix="pcoh-live-")
        self.runs: list[_Run] = []
        self.frames = 0  #: how many times the figure was drawn
        self.png: Optional[bytes] = None  #: the last frame
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._panel = None

    # ------------------------------------------------------------------ measures
    def measure(self, student) -> dict:
        """PC_n, kNN accuracy, per-reference Spearman and the aligned 2-D view of ``student``'s test features."""
        s_train, _, _ = predict(student, self.data.train)
        s_test, _, _ = predict(student, self.data.test)
        rho = per_reference_spearman(s_test, self.t_test, student_metric=self.cfg.student_metric,
                                     teacher_metric=self.cfg.teacher_metric)
        knn = knn_accuracy(s_train, self.y_train, s_test, self.y_test, metric=self.cfg.student_metric)
        xy = align_procrustes(_pca2(s_test.numpy(), self.cfg.student_metric), self.teacher_xy)
        return {"pc": float(rho.mean()), "knn": knn, "rho": rho, "xy": xy}

    # ------------------------------------------------------------------ training
    @property
    def training(self) -> bool:
        """Whether a run is training now."""
        return self._thread is not None and self._thread.is_alive()

    def train(self, method: str = "pc", epochs: int = 10, batch_size: int = 64, *, wait: bool = False) -> _Run:
        """Start training a student with ``method`` in a background thread (a run at a time).

        Parameters
        ----------
        method : str
            One of :func:`live_methods`.
        epochs : int, default 10
        batch_size : int, default 64
        wait : bool, default False
            Return only once the run has ended (as in an unattended run of the notebook).
        """
        check_choice(method, "method", live_methods())
        epochs = check_int(epochs, "epochs", minimum=1)
        batch_size = check_int(batch_size, "batch_size", minimum=2)
        wait = check_bool(wait, "wait")
        if self.training:
            raise RuntimeError("a run is training already: press Stop (or call stop()) first")
        train_cfg = dataclasses.replace(self.cfg.student_train, epochs=epochs, batch_size=batch_size)
        spec = StudentSpec(self.model, method, "class-unaware", train=train_cfg)
        same = sum(r.method == method for r in self.runs)
        run = _Run(method, method if not same else f"{method} #{same + 1}", spec)
        self.runs.append(run)
        self._stop.clear()
        self._thread = threading.Thread(target=self._train, args=(run,), name=f"pcoh-live-{run.label}", daemon=True)
        self._thread.start()
        if wait:
            self.wait()
        return run

    def stop(self) -> None:
        """Ask the run in progress to stop (it does within one batch)."""
        self._stop.set()

    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until the run in progress has ended."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _record(self, run: _Run, epoch: int, student, loss: Optional[float], started: float) -> None:
        m = self.measure(student)
        run.rho, run.xy = m["rho"], m["xy"]
        run.epochs.append({"epoch": epoch, "loss": loss, "pc": m["pc"], "knn": m["knn"],
                           "seconds": time.perf_counter() - started})
        self.redraw()

    def _train(self, run: _Run) -> None:
        started = time.perf_counter()
        total = run.spec.train.epochs
        try:
            import torch

            with torch.random.fork_rng(devices=[]):  # the student's own initial weights, as in a run
                torch.manual_seed(run.spec.train.seed)
                from ..train import build_model

                initial = build_model(run.spec.model, self.data, run.spec.train.seed, run.spec.model_kwargs).eval()
            self._record(run, 0, initial, None, started)
            self._progress(run, 0, total, None, started)

            def callback(epoch, student, loss):
                self._record(run, epoch, student, loss, started)
                self._progress(run, epoch, total, loss, started)

            run.result = train_student(run.spec, self.teacher, self.data, teacher_key=self.teacher_key,
                                       root=self.scratch, device=self.device, quiet=True, cache=False,
                                       callback=callback, stop=self._stop)
            run.status = "stopped" if run.result.stopped else "finished"
        except Exception as err:  # shown in the panel: the thread has no cell to print into
            run.status = f"failed: {type(err).__name__}: {err}"
        self._progress(run, len(run.epochs) - 1, total, run.epochs[-1]["loss"] if run.epochs else None, started,
                       done=True)
        self.redraw()

    # ------------------------------------------------------------------ the cache
    def save(self) -> list:
        """Copy every finished run (not one stopped early) into the run cache the other notebooks read.

        Returns
        -------
        list of str
            One line per run: where it went, or why not.
        """
        lines = []
        for run in self.runs:
            if run.result is None or run.result.stopped or run.status != "finished":
                lines.append(f"{run.label}: {run.status}, not saved (only finished runs are)")
                continue
            path = run_dir(self.cfg.cache, "student", run.spec.key(self.teacher_key))
            config = {"kind": "student", "teacher": self.teacher_key, **as_dict(run.spec)}
            model, history = copy.deepcopy(run.result.model), list(run.result.history)
            _, cached = _runs.cached_run(path, config, model, self.device, True, lambda: history)
            lines.append(f"{run.label}: {'already in' if cached else 'saved to'} {path}")
        return lines

    def close(self) -> None:
        """Stop training and remove the scratch folder."""
        self.stop()
        self.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)

    # ------------------------------------------------------------------ the figure
    def figure(self):
        """The figure of every run so far (a :class:`matplotlib.figure.Figure`, no pyplot state)."""
        from matplotlib.figure import Figure

        with self._lock:
            runs = [dataclasses.replace(r, epochs=list(r.epochs)) for r in self.runs]
        fig = Figure(figsize=(13, 7.6), layout="constrained")
        grid = fig.add_gridspec(2, 3)
        ax_pc, ax_knn, ax_rho = (fig.add_subplot(grid[0, i]) for i in range(3))
        shown = runs[-2:]
        ax_maps = [fig.add_subplot(grid[1, i]) for i in range(3)]
        colours = {}
        for r in runs:
            colours[r.label] = _methods.color(r.method)
        for r in runs:
            e = [p["epoch"] for p in r.epochs]
            style = "-" if r.status != "stopped" else "--"
            ax_pc.plot(e, [p["pc"] for p in r.epochs], style, marker="o", ms=3, color=colours[r.label], label=r.label)
            ax_knn.plot(e, [p["knn"] for p in r.epochs], style, marker="o", ms=3, color=colours[r.label],
                        label=r.label)
        from matplotlib.ticker import MaxNLocator

        for ax in (ax_pc, ax_knn):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_pc.set(xlabel="epoch", ylabel="PC_n (test set)", title="rank agreement with the teacher")
        ax_knn.axhline(self.teacher_knn, color="0.3", ls=":", lw=1, label="teacher")
        ax_knn.set(xlabel="epoch", ylabel="kNN accuracy (test set)", title="kNN accuracy")
        bins = np.linspace(-1, 1, 41)
        for r in runs:
            if r.rho is not None:
                last = r.epochs[-1]["epoch"] if r.epochs else 0
                ax_rho.hist(r.rho, bins=bins, histtype="step", lw=1.6, color=colours[r.label],
                            label=f"{r.label}, epoch {last}")
        ax_rho.set(xticks=[-1, -0.5, 0, 0.5, 1], xlabel="per-reference Spearman", ylabel="test references",
                   title="per-reference Spearman (latest epoch)")
        for ax in (ax_pc, ax_knn, ax_rho):
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8, loc="best")
        if not runs:
            ax_pc.text(0.5, 0.5, "press Train", ha="center", va="center", transform=ax_pc.transAxes)
        cmap = "tab10"
        ax_maps[0].scatter(*self.teacher_xy.T, c=self.y_test, cmap=cmap, s=6, vmin=0, vmax=9)
        ax_maps[0].set_title(f"teacher ({self.cfg.teacher}), PCA")
        lo, hi = self.teacher_xy.min(axis=0), self.teacher_xy.max(axis=0)
        pad = 0.15 * (hi - lo)
        for ax, r in zip(ax_maps[1:], shown):
            if r.xy is not None:
                ax.scatter(*r.xy.T, c=self.y_test, cmap=cmap, s=6, vmin=0, vmax=9)
            last = r.epochs[-1] if r.epochs else {"epoch": 0, "pc": float("nan")}
            ax.set_title(f"{r.label}: epoch {last['epoch']}/{r.spec.train.epochs}, PC_n {last['pc']:.3f}"
                         f"{'' if r.status in ('training', 'finished') else ' (' + r.status.split(':')[0] + ')'}",
                         fontsize=10)
        for ax in ax_maps[1 + len(shown):]:
            ax.text(0.5, 0.5, "train a method to see\nits embedding here", ha="center", va="center",
                    transform=ax.transAxes, color="0.4", fontsize=10)
        for ax in ax_maps:
            ax.set(xticks=[], yticks=[], xlim=(lo[0] - pad[0], hi[0] + pad[0]), ylim=(lo[1] - pad[1], hi[1] + pad[1]))
            ax.set_aspect("equal", adjustable="box")
        for ax in (ax_pc, ax_knn, ax_rho, *ax_maps):  # sizes of their own: the notebook's slide style is larger
            ax.title.set_fontsize(11)
            ax.xaxis.label.set_fontsize(10)
            ax.yaxis.label.set_fontsize(10)
            ax.tick_params(labelsize=9)
        fig.suptitle(f"a {self.model} student learning to rank as its teacher does (digits test set, "
                     f"{len(self.y_test)} images, coloured by class); students aligned to the teacher by Procrustes",
                     fontsize=11)
        return fig

    def redraw(self) -> bytes:
        """Draw :meth:`figure` into a PNG (into the panel's image when there is one); returns the PNG."""
        fig = self.figure()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=72)
        with self._lock:
            self.png = buf.getvalue()
            self.frames += 1
        if self._panel is not None:
            self._panel["image"].value = self.png
        return self.png

    # ------------------------------------------------------------------ the panel
    def _progress(self, run: _Run, epoch: int, total: int, loss, started: float, *, done: bool = False) -> None:
        if self._panel is None:
            return
        bar, status = self._panel["bar"], self._panel["status"]
        bar.max, bar.value = total, epoch
        elapsed = time.perf_counter() - started
        trained = [p["seconds"] for p in run.epochs]
        per_epoch = (trained[-1] - trained[0]) / (len(trained) - 1) if len(trained) > 1 else None
        left = f", about {per_epoch * (total - epoch):.0f} s left" if per_epoch and not done else ""
        loss_text = f", loss {loss:.4f}" if loss is not None else ""
        state = run.status if done else "training"
        bar.bar_style = {"finished": "success", "stopped": "warning"}.get(state, "danger" if done else "info")
        status.value = (f"<b>{run.label}</b>: epoch {epoch}/{total}{loss_text}, {elapsed:.0f} s{left}"
                        f" &mdash; <span class='pcoh-live-state'>{state}</span>")
        for name in ("train", "save"):
            self._panel[name].disabled = not done
        self._panel["stop"].disabled = done

    def controls(self, *, show: bool = True, epochs: int = 10, batch_size: int = 64):
        """The panel: method, epochs, batch size; Train, Stop, Save; progress; the figure.

        Returns
        -------
        ipywidgets.VBox
            Displayed already when ``show``.
        """
        import ipywidgets as widgets
        from IPython.display import display

        show = check_bool(show, "show")
        methods = live_methods()
        method = widgets.Dropdown(options=methods, value=methods[0], description="method")
        n_epochs = widgets.IntSlider(value=check_int(epochs, "epochs", minimum=1), min=1, max=50,
                                     description="epochs", continuous_update=False)
        batch = widgets.Dropdown(options=[32, 64, 128, 256], value=check_int(batch_size, "batch_size", minimum=2),
                                 description="batch size")
        train = widgets.Button(description="Train", button_style="primary", icon="play")
        stop = widgets.Button(description="Stop", icon="stop", disabled=True)
        save = widgets.Button(description="Save to run cache", icon="save", disabled=not self.runs)
        bar = widgets.IntProgress(value=0, min=0, max=n_epochs.value, description="epochs")
        status = widgets.HTML(value="Pick a method and press <b>Train</b>.")
        note = widgets.HTML(value=SAVED_COPY_NOTE.replace("the figure above", "the figure below") if saved_copy()
                            else "")
        image = widgets.Image(format="png", value=self.png or self.redraw())

        def on_train(_):
            if self.training:
                note.value = "A run is training already: press Stop first."
                return
            note.value = ""
            train.disabled, stop.disabled = True, False
            self.train(method.value, n_epochs.value, batch.value)

        def on_stop(_):
            if not self.training:
                note.value = "Nothing is training."
                return
            self.stop()
            status.value += " &mdash; stopping after this batch"

        def on_save(_):
            note.value = "<br>".join(self.save()) or "Nothing trained yet."

        train.on_click(on_train)
        stop.on_click(on_stop)
        save.on_click(on_save)
        panel = widgets.VBox([widgets.HBox([method, n_epochs, batch]), widgets.HBox([train, stop, save]),
                              widgets.HBox([bar, status]), note, image])
        panel.add_class("pcoh-live")
        self._panel = {"train": train, "stop": stop, "save": save, "bar": bar, "status": status, "note": note,
                       "image": image, "method": method, "epochs": n_epochs, "batch": batch}
        if show:
            display(panel)
        return panel
