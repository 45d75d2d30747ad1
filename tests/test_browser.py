"""The notebooks in a real browser: JupyterLab and Voila served here, driven in headless Chromium.

What nbval cannot see: a trusted notebook opens unmodified with its saved controls drawn as
controls (01, 04, 06); after Run All a moved slider redraws its figure (01, 04); notebook 10's
Train then Stop ends training and leaves its figure drawn; ``make present`` (Voila) shows
notebook 10 without code. No page may load anything from another host. Screenshots go to a
temporary folder whose path is printed.

Needs the system's Chromium (Debian: ``apt-get install chromium``) and the ``playwright`` package
(the ``dev`` extra), which drives that Chromium: no browser is downloaded. Without them the tests
are skipped, unless ``PCOH_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHROMIUM = os.environ.get("PCOH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
HOW_TO = ("the browser tests need Chromium from the system's package manager (Debian/Ubuntu: "
          "`sudo apt-get install chromium`; or set PCOH_CHROMIUM to its path) and the playwright package "
          "(`pip install -e '.[dev]'`; it drives that Chromium, nothing is downloaded)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL = {"127.0.0.1", "localhost"}
_ROOT_FLAG = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # CI containers run as root
TIMEOUT = 120_000  # ms, for one notebook's Run All in smoke mode


def _require_browser():
    missing = []
    if not CHROMIUM or not Path(CHROMIUM).exists():
        missing.append("chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright")
    if missing:
        message = f"missing {', '.join(missing)}: {HOW_TO}"
        if os.environ.get("PCOH_REQUIRE_BROWSER", "") not in ("", "0"):
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, process: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"no answer from {url} in {seconds} s:\n{log.read_text()[-3000:]}")


def _write(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


def _hashes() -> dict:
    return {p.name: p.read_bytes() for p in NOTEBOOKS.glob("*.ipynb")}


@pytest.fixture(scope="module")
def shots():
    folder = Path(tempfile.mkdtemp(prefix="pcoh-browser-"))
    sys.__stdout__.write(f"\nbrowser screenshots in {folder}\n")
    return folder


def _shot(page, shots: Path, name: str) -> Path:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    sys.__stdout__.write(f"screenshot: {path}\n")
    sys.__stdout__.flush()
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A Jupyter of its own (data, config, runtime, settings folders), the notebooks trusted in it as
    ``make trust`` does, smoke budgets, autosave off (the committed notebooks are never written)."""
    _require_browser()
    home = tmp_path_factory.mktemp("jupyter")
    env = {**os.environ, "PCOH_SMOKE": "1", "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.pop("MPLBACKEND", None)
    settings = home / "settings"
    _write(settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings", {"autosave": False})
    _write(settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
           {"fetchNews": "false", "checkForUpdates": False})
    subprocess.run([sys.executable, "-m", "jupyter", "trust", *sorted(str(p) for p in NOTEBOOKS.glob("*.ipynb"))],
                   env=env, check=True, capture_output=True, cwd=ROOT)
    return env


def _serve(command: list, env: dict, url: str, log: Path, cwd: Path):
    handle = log.open("w")
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        _wait_http(url, process, log)
    except BaseException:
        process.kill()
        raise
    return process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def lab(env, tmp_path_factory):
    port, token = _free_port(), os.urandom(12).hex()
    log = tmp_path_factory.mktemp("lab") / "lab.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
               "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={NOTEBOOKS}",
               "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly", *_ROOT_FLAG]
    process = _serve(command, env, f"http://127.0.0.1:{port}/api/status?token={token}", log, NOTEBOOKS)
    before = _hashes()
    yield f"http://127.0.0.1:{port}", token
    _stop(process)
    changed = sorted(name for name, content in _hashes().items() if before.get(name) != content)
    assert not changed, f"the browser session wrote the notebooks {changed}"


@pytest.fixture(scope="module")
def browser(env):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


class Page:
    """A page that refuses (and records) every request to another host, and the console errors."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1500, "height": 1000})
        self.context.set_default_timeout(60_000)
        self.foreign, self.errors = [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def _route(self, route):
        url = route.request.url
        if urlparse(url).scheme in ("http", "https", "ws", "wss") and urlparse(url).hostname not in LOCAL:
            self.foreign.append(url)
            return route.abort()
        return route.continue_()

    def close(self):
        self.context.close()


@pytest.fixture
def page(browser):
    p = Page(browser)
    yield p
    p.close()
    assert not p.foreign, f"requests to other hosts: {p.foreign[:5]}"


_STATE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const m = w.context.model;
  const cells = [];
  for (let i = 0; i < m.cells.length; i++) {
    const c = m.cells.get(i);
    cells.push({type: c.type, trusted: c.trusted, count: c.type === 'code' ? c.executionCount : null});
  }
  const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
  return {path: w.context.path, dirty: m.dirty, cells, kernel: kernel ? kernel.status : null};
}"""


def _open(p: Page, lab, name: str):
    base, token = lab
    page = p.page
    page.goto(f"{base}/lab/workspaces/{name[:2]}/tree/{name}?reset&token={token}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           f" && window.jupyterapp.shell.currentWidget.context"
                           f" && window.jupyterapp.shell.currentWidget.context.path === {json.dumps(name)}",
                           timeout=90_000)
    page.evaluate("async () => { const w = window.jupyterapp.shell.currentWidget;"
                  " await w.context.ready; await w.sessionContext.ready; }")
    page.wait_for_selector(".jp-Notebook .jp-OutputArea-output", timeout=60_000)
    return page


def _check_opened(page, name: str, *, controls: bool = True):
    state = page.evaluate(_STATE)
    assert state["path"] == name
    untrusted = [i for i, c in enumerate(state["cells"]) if c["type"] == "code" and not c["trusted"]]
    assert not untrusted, f"{name}: code cells not trusted: {untrusted}"
    if controls:
        page.wait_for_selector(".jp-OutputArea-output .jupyter-widgets", timeout=30_000)
        shown = page.locator(".jp-OutputArea-output .widget-slider, .jp-OutputArea-output .widget-dropdown,"
                             " .jp-OutputArea-output .widget-button, .jp-OutputArea-output .widget-toggle-buttons")
        assert shown.count() > 0, f"{name}: no saved control drawn"
        text = page.locator(".jp-Notebook").inner_text()
        assert "interactive(children=" not in text and "VBox(children=" not in text, \
            f"{name}: a saved control shows as text"
    page.wait_for_timeout(1500)  # a late change (a widget rendering, a metadata fill-in) would mark it now
    state = page.evaluate(_STATE)
    assert not state["dirty"], f"{name}: marked modified on opening"
    assert page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").count() == 0


def _run_all(page, name: str):
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(f"""() => {{
        const s = ({_STATE})();
        return s.kernel === 'idle' && s.cells.every(c => c.type !== 'code' || c.count !== null)
          && ![...document.querySelectorAll('.jp-Notebook .jp-InputPrompt')].some(e => e.innerText.includes('*'));
    }}""", timeout=TIMEOUT, polling=500)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] .jp-RenderedText,"
                          " .jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")
    tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t.split("\n")[0]]
    assert not tracebacks, f"{name}: Run All raised:\n{tracebacks[0][-2000:]}"


def _image_src(interact) -> str:
    img = interact.locator(".widget-output img")
    return img.first.get_attribute("src") if img.count() else ""


def _slider_redraws(page, name: str, shots) -> None:
    """The first control with a slider: move it, press Draw, a figure appears; move again, it changes."""
    interact = page.locator(".jp-OutputArea-output .widget-interact").filter(has=page.locator(".widget-slider")).first
    interact.scroll_into_view_if_needed()
    handle = interact.locator(".noUi-handle, .widget-slider input").first
    srcs = []
    for _ in range(2):
        handle.focus()
        page.keyboard.press("ArrowRight")
        draw = interact.get_by_role("button", name="Draw")
        if draw.count():
            draw.first.click()
        previous = srcs[-1] if srcs else ""
        for _ in range(120):
            src = _image_src(interact)
            if src and src != previous:
                break
            page.wait_for_timeout(250)
        srcs.append(_image_src(interact))
    _shot(page, shots, f"{name[:2]}-slider")
    assert srcs[0], f"{name}: moving the slider drew no figure"
    assert srcs[1] != srcs[0], f"{name}: moving the slider again left the figure as it was"


@pytest.mark.parametrize("name", ["01-perception-coherence.ipynb", "04-rank-preservation.ipynb",
                                  "06-probabilistic-diagnostics.ipynb"])
def test_notebook_opens_trusted_unmodified_with_its_controls(lab, page, shots, name):
    opened = _open(page, lab, name)
    _check_opened(opened, name)
    opened.locator(".jp-OutputArea-output .jupyter-widgets").first.scroll_into_view_if_needed()
    _shot(opened, shots, f"{name[:2]}-opened")


@pytest.mark.parametrize("name", ["01-perception-coherence.ipynb", "04-rank-preservation.ipynb"])
def test_after_run_all_a_slider_redraws_its_figure(lab, page, shots, name):
    opened = _open(page, lab, name)
    _run_all(opened, name)
    _slider_redraws(opened, name, shots)


def _train_then_stop(page, shots, prefix: str) -> None:
    panel = page.locator(".pcoh-live").last
    panel.scroll_into_view_if_needed()
    epochs = panel.locator(".widget-slider .noUi-handle").first
    epochs.focus()
    for _ in range(10):  # more epochs than it can train before Stop
        page.keyboard.press("ArrowRight")
    panel.get_by_role("button", name="Train").click()
    panel.locator(".pcoh-live-state", has_text="training").first.wait_for(timeout=30_000)
    stop = panel.get_by_role("button", name="Stop")
    stop.wait_for()
    page.wait_for_timeout(1500)
    stop.click()
    panel.locator(".pcoh-live-state", has_text="stopped").first.wait_for(timeout=30_000)
    assert panel.get_by_role("button", name="Train").is_enabled()
    src = panel.locator(".widget-image").first.get_attribute("src") or ""
    assert src.startswith("blob:") or src.startswith("data:image/png"), src[:60]
    box = panel.locator(".widget-image").first.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 200, box
    _shot(page, shots, f"{prefix}-train-stop")


def test_notebook_10_train_then_stop_leaves_the_figure(lab, page, shots):
    name = "10-watch-a-student-learn.ipynb"
    opened = _open(page, lab, name)
    _check_opened(opened, name)
    _run_all(opened, name)
    _train_then_stop(opened, shots, "10")


def test_make_present_shows_notebook_10_without_code(env, page, shots, tmp_path):
    port = _free_port()
    log = tmp_path / "voila.log"
    # what `make present` runs
    command = [sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
               "--template=pcoh", str(NOTEBOOKS / "10-watch-a-student-learn.ipynb")]
    process = _serve(command, {**env, "PCOH_PRESENT": "1", "JUPYTER_PATH": str(ROOT / "present")},
                     f"http://127.0.0.1:{port}/", log, ROOT)
    try:
        p = page.page
        p.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
        p.locator(".pcoh-live").first.wait_for(timeout=120_000)
        # the narrative (markdown) is shown, the code is not
        assert p.locator(".jp-CodeCell .jp-InputArea, .jp-CodeMirrorEditor, .cm-editor").count() == 0, "code is shown"
        assert p.locator(".jp-RenderedMarkdown h1").first.inner_text().startswith("10 ")
        assert "LiveTraining(" not in p.locator("body").inner_text(), "code is shown"
        _train_then_stop(p, shots, "10-present")
    finally:
        _stop(process)
