"""The playground in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

The server is the real command, `modelspec serve FILE --port 0`. The page is typed into: a spec with a
wrong Linear size is underlined at the right line, and hovering shows the message and the hint; fixed, the
code panel, the summary and the diagram follow; a summary row, clicked, highlights its line; Save writes
the file. Every request the page makes to anywhere but the server is aborted and counted, and must be none:
the page works with the network blocked. The static export is opened from disk the same way.

With ``MODELSPEC_SCREENSHOTS=DIR`` the screenshots of this run are written to DIR: the README's pictures
(docs/images/) come from here: ``MODELSPEC_SCREENSHOTS=docs/images pytest tests/test_browser.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

from conftest import ROOT  # noqa: E402
from modelspec.examples import examples  # noqa: E402
from modelspec.summary import summarize, table_cells  # noqa: E402

CHROMIUM = os.environ.get("MODELSPEC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):  # .ci/run installs it: there, a missing browser is a failure, not a skip
        raise RuntimeError(f"no Chromium at {CHROMIUM}: .ci/run should have installed Debian's chromium")
    pytest.skip("no Chromium: apt-get install chromium (the tests use the system's browser)", allow_module_level=True)

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
BAD = "model Net(x: [B, 4]) {\n  fc1 = Linear(4, 8)\n  fc2 = Linear(16, 2)  # its input is 8 wide\n}\n"
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


class Offline:
    """A page whose every request but those to ``allowed`` is aborted, and remembered."""

    def __init__(self, browser, allowed: str):
        self.blocked: list[str] = []
        self.context = browser.new_context(viewport={"width": 1500, "height": 860}, device_scale_factor=1)
        self.context.route("**/*", self.route)
        self.allowed = allowed
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def route(self, route):
        url = route.request.url
        if url.startswith(self.allowed):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")


def shoot(page, name: str, tmp: Path):
    out = tmp / name
    page.screenshot(path=str(out))
    assert out.stat().st_size > 10_000  # a page, not a blank
    shots = os.environ.get("MODELSPEC_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, Path(shots) / name)


@pytest.fixture()
def served(tmp_path):
    """`modelspec serve` on a new spec file, on a free port: (url, the file)."""
    spec = tmp_path / "net.nnspec"
    proc = subprocess.Popen([sys.executable, "-m", "modelspec", "serve", str(spec), "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None else "")
        yield found.group(0), spec
    finally:
        proc.terminate()
        proc.wait(10)


def view_text(page, element_id: str) -> str:
    return page.evaluate(f"NnspecEditor.getText(document.getElementById('{element_id}').nnspecView)")


def line_of(page, selector: str) -> int:
    """The 1-based line of the editor holding the first element that ``selector`` finds."""
    return page.evaluate("""(sel) => {
        const view = document.getElementById('editor').nnspecView;
        const el = document.querySelector('#editor ' + sel);
        return view.state.doc.lineAt(view.posAtDOM(el)).number;
    }""", selector)


def page_table(page) -> list[list[str]]:
    return page.eval_on_selector_all("#summary tbody tr",
                                     "rows => rows.map(r => Array.from(r.cells, c => c.textContent))")


def wait_status(page, pattern: str):
    page.wait_for_function("(p) => new RegExp(p).test(document.getElementById('status').textContent)",
                           arg=pattern, timeout=WAIT_MS)


def test_type_see_the_error_fix_it(browser, served, tmp_path):
    url, spec = served
    tab = Offline(browser, url)
    page = tab.page
    page.goto(url)
    page.wait_for_selector("#editor .cm-content")
    assert page.locator("#file").text_content() == "net.nnspec"
    page.click("#editor .cm-content")
    page.keyboard.insert_text(BAD)

    # the wrong size: underlined on line 3, its message and hint on hover, listed below the editor
    wait_status(page, "^1 error")
    page.wait_for_selector("#editor .cm-lintRange-error")
    # the underline is drawn once the editor lays the diagnostic out, which a loaded machine does later
    page.wait_for_function("""() => {
        const el = document.querySelector('#editor .cm-lintRange-error');
        return el !== null && el.textContent === '16';
    }""", timeout=WAIT_MS)
    assert line_of(page, ".cm-lintRange-error") == 3
    page.hover("#editor .cm-lintRange-error")
    tip = page.wait_for_selector(".cm-tooltip-lint", timeout=WAIT_MS)
    said = tip.text_content()
    assert "MS401" in said and "in_features=16" in said and "[B, 8]" in said
    assert "hint" in said.lower() or "_" in said  # the hint: infer it with _
    problem = page.locator("#problems li.error")
    assert problem.count() == 1 and "MS401" in problem.text_content()
    # the summary shows the modules built before the error, the failing one marked
    page.wait_for_selector("#summary tr.failed")
    assert page_table(page)[-1][:2] == ["fc2 (Linear)", "error, see below"]
    assert "fc2" not in view_text(page, "code")  # no code for a spec with an error
    shoot(page, "playground-error.png", tmp_path)

    # fixed by typing over the 16: the code, the summary and the diagram follow
    page.mouse.move(0, 0)
    start = BAD.index("16")
    page.evaluate("(at) => { const v = document.getElementById('editor').nnspecView;"
                  " v.focus(); v.dispatch({selection: {anchor: at, head: at + 2}}); }", start)
    page.keyboard.type("_")
    wait_status(page, "^ok")
    assert page.locator("#editor .cm-lintRange-error").count() == 0
    page.wait_for_function("NnspecEditor.getText(document.getElementById('code').nnspecView)"
                           ".includes('nn.Linear(8, 2)')", timeout=WAIT_MS)
    # the table is `modelspec summary`'s, cell for cell
    fixed = BAD.replace("Linear(16, 2)", "Linear(_, 2)")
    assert page_table(page) == [[c.strip() for c in table_cells(r)] for r in summarize(fixed).rows]
    assert page_table(page)[2] == ["fc2 (Linear)", "[B, 2]", "18", "yes", "--", "16"]
    assert "Total params: 58" in page.locator("#summary .totals").text_content()
    page.wait_for_function("document.querySelector('#diagram svg') && "
                           "document.querySelector('#diagram svg').textContent.includes('fc2')", timeout=WAIT_MS)

    # a warning is underlined too, as a warning: a Softmax without its dim
    end = page.evaluate("document.getElementById('editor').nnspecView.state.doc.line(3).to")
    page.evaluate("(at) => { const v = document.getElementById('editor').nnspecView;"
                  " v.focus(); v.dispatch({selection: {anchor: at}}); }", end)
    page.keyboard.insert_text("\n  probs = Softmax()")
    wait_status(page, "^ok, 1 warning")
    page.wait_for_selector("#editor .cm-lintRange-warning")
    assert line_of(page, ".cm-lintRange-warning") == 4 and page.locator("#editor .cm-lintRange-error").count() == 0
    page.hover("#editor .cm-lintRange-warning")
    assert "MS802" in page.wait_for_selector(".cm-tooltip-lint", timeout=WAIT_MS).text_content()
    page.mouse.move(0, 0)
    page.keyboard.press("Control+z")  # the warning's line goes again
    wait_status(page, "^ok$")
    assert page.locator("#editor .cm-lintRange-warning").count() == 0

    # a summary row, clicked, highlights its line of the spec
    page.click('#summary tr[data-path="fc1"]')
    page.wait_for_selector("#editor .cm-ms-highlight")
    assert line_of(page, ".cm-ms-highlight") == 2
    page.click('#summary tr[data-path="fc2"]')
    assert line_of(page, ".cm-ms-highlight") == 3 and page.locator("#editor .cm-ms-highlight").count() == 1

    # --explain, and back
    plain = view_text(page, "code")
    page.check("#explain")
    page.wait_for_function("NnspecEditor.getText(document.getElementById('code').nnspecView).includes('y = x W^T')",
                           timeout=WAIT_MS)
    page.uncheck("#explain")
    page.wait_for_function("(want) => NnspecEditor.getText(document.getElementById('code').nnspecView) === want",
                           arg=plain, timeout=WAIT_MS)
    shoot(page, "playground.png", tmp_path)

    # Save writes the file
    page.click("#save")
    wait_status(page, "^saved")
    assert spec.read_text() == BAD.replace("Linear(16, 2)", "Linear(_, 2)")
    assert tab.blocked == [] and tab.errors == []
    tab.context.close()


def test_the_bundled_specs_menu_and_a_run(browser, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "modelspec", "serve", "--port", "0"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", proc.stdout.readline()).group(0)
        tab = Offline(browser, url)
        page = tab.page
        page.goto(url)
        wait_status(page, "^ok")
        names = page.eval_on_selector_all("#example option", "os => os.map(o => o.value)")
        assert names == list(examples())
        assert "class CNN" in view_text(page, "code") or "nn.Conv2d" in view_text(page, "code")
        page.select_option("#example", "resnet18")
        page.wait_for_function("document.querySelectorAll('#summary tbody tr').length > 40", timeout=WAIT_MS)
        wait_status(page, "^ok")
        assert "11,689,512" in page.locator("#summary .totals").text_content()
        assert page.url.endswith("#resnet18")
        page.click("#run")
        page.wait_for_function("/ ms on cpu/.test(document.getElementById('ran').textContent)", timeout=WAIT_MS)
        assert "output 0: [2, 1000]" in page.locator("#ran").text_content()
        # a row inside a block highlights the block's line that makes it
        page.click('#summary tr[data-path="layer1.0.conv1"]')
        page.wait_for_selector("#editor .cm-ms-highlight")
        assert line_of(page, ".cm-ms-highlight") == 5
        shoot(page, "playground-resnet18.png", tmp_path)
        assert tab.blocked == [] and tab.errors == []
        tab.context.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_static_export_opens_from_disk(browser, tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "modelspec", "serve", "--export", str(site),
                           str(ROOT / "specs" / "cnn.nnspec"), str(ROOT / "specs" / "gpt.nnspec")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in site.iterdir()) == ["assets", "cnn.html", "gpt.html", "index.html"]
    tab = Offline(browser, site.as_uri())
    page = tab.page
    page.goto((site / "index.html").as_uri())
    page.click("text=cnn")
    wait_status(page, "^ok")
    assert view_text(page, "editor") == (ROOT / "specs" / "cnn.nnspec").read_text()
    assert page.evaluate("document.getElementById('editor').nnspecView.state.readOnly")
    assert page.locator("#summary tbody tr").count() > 3
    page.wait_for_selector("#diagram svg")
    code = view_text(page, "code")
    page.check("#explain")
    assert view_text(page, "code") != code
    assert page.locator("#save").is_hidden() and page.locator("#run").is_hidden()
    page.select_option("#specs select", "gpt.html")
    page.wait_for_url("**/gpt.html")
    wait_status(page, "^ok")
    assert tab.blocked == [] and tab.errors == []
    tab.context.close()
