"""`budget report`: one self-contained HTML page plus its charts, safe to open, read in a real browser.

The browser test opens the report from disk in Debian's Chromium, headless, as a person would:
the DOM after load (``--dump-dom``: every image a ``data:`` URI that decodes to a real picture,
no script, the plan's total on the page) and a screenshot (the charts painted). The browser
comes from the test setup itself, because ``make test`` must work on a machine that has only
python3 and make: no PyPI package ships a Chromium binary in its wheel (those that drive one
download it at run time, which this project's machines cannot), so the session fixture
:func:`chromium` installs Debian's ``chromium`` with apt-get when it is missing and the tests
run as root (CI does). Where no package manager can install it the test is skipped with a loud
reason (a warning in pytest's summary too); under CI (``CI=true``) a missing browser fails.
``BUDGET_TEST_BROWSER`` names another Chromium or Chrome binary (a developer's Mac).
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from scenarios import example_path, load_scenario
from scenarios.report import REPORT_FILE, write_report

PASTED = example_path("pasted_curves.toml")
QUARTERLY = example_path("quarterly.toml")
HOSTILE = "<img src=x onerror=alert(1)>"
PNG = b"\x89PNG\r\n\x1a\n"
#: Tags the report may contain; anything else means user text got through as markup.
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "b", "ul", "li", "table",
                "tr", "th", "td", "figure", "img", "figcaption", "span", "section", "nav", "a", "footer"}


class _Page(HTMLParser):
    """Tags, attributes and visible text of a page, as a browser's parser splits them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("style", "script", "title"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    return p


def _image(uri: str):
    """The picture a ``data:image/png;base64,…`` URI holds, decoded and checked by Pillow."""
    from PIL import Image

    m = re.fullmatch(r"data:image/png;base64,([A-Za-z0-9+/=]+)", uri)
    assert m, uri[:80]
    raw = base64.b64decode(m.group(1), validate=True)
    Image.open(io.BytesIO(raw)).verify()
    img = Image.open(io.BytesIO(raw))
    img.load()
    return img


def _hostile_scenario(tmp_path: Path, *, infeasible: bool = False) -> Path:
    """pasted_curves.toml with markup in every piece of user text (and a $ pair, matplotlib's math)."""
    text = PASTED.read_text(encoding="utf-8")
    text = text.replace('name = "2027-Q1 plan on pasted curves"',
                        'name = "Q1 <script>alert(2)</script> & \\"plan\\""')
    text = text.replace('description = "Reference split',
                        'description = "<a href=\\"https://x.invalid\\">click</a> split')
    text = text.replace('label = "Douyin 抖音"', f'label = "{HOSTILE} 抖音"')
    text = text.replace('label = "Xiaohongshu 小红书"', 'label = "$5 promo$ 小红书"')
    text = text.replace('label = "Content production"', 'label = "</table><b onclick=alert(3)>content"')
    if infeasible:
        text = text.replace("max_change = 0.5            # move", "min_spend = 20_000_000\nmax_change = 0.5  # move", 1)
    path = tmp_path / "hostile.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# safe to open (issue #12 §5)


def test_user_text_shows_as_text_and_never_as_markup(tmp_path):
    sc = load_scenario(_hostile_scenario(tmp_path))
    files = write_report([sc], tmp_path / "out")
    page = files.html.read_text(encoding="utf-8")

    assert "<img src=x" not in page and "<script" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    p = parse(page)
    assert {t for t, _ in p.tags} <= ALLOWED_TAGS
    assert not [(t, a) for t, a in p.tags for name in a if name.startswith("on")]
    shown = "".join(p.text)
    for text in (f"{HOSTILE} 抖音", "Q1 <script>alert(2)</script> & \"plan\"", "$5 promo$ 小红书",
                 "</table><b onclick=alert(3)>content", '<a href="https://x.invalid">click</a> split'):
        assert text in shown, text
    # The only images are the charts, embedded; nothing is fetched and no script may run at all.
    images = [a["src"] for t, a in p.tags if t == "img"]
    assert len(images) == len(files.charts) >= 3
    assert all(src.startswith("data:image/png;base64,") for src in images)
    csp = next(a["content"] for t, a in p.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert not [a for t, a in p.tags if t == "a" and not a.get("href", "").startswith("#")]


def test_chinese_names_in_the_page_come_with_their_font(tmp_path):
    """The page's Chinese text needs no system font: the bundled CJK font, cut down to the
    page's characters, is embedded (a few KB)."""
    from fontTools.ttLib import TTFont

    files = write_report([load_scenario(PASTED)], tmp_path / "out")
    page = files.html.read_text(encoding="utf-8")
    m = re.search(r"@font-face\{font-family:\"([^\"]+)\";src:url\(data:font/otf;base64,([A-Za-z0-9+/=]+)\)", page)
    # first in the stack (see scenarios.report._font_face for why)
    assert m and page.split("body{font-family:", 1)[1].startswith(f'"{m.group(1)}",')
    font = TTFont(io.BytesIO(base64.b64decode(m.group(2))))
    cmap = font.getBestCmap()
    assert all(ord(ch) in cmap for ch in "抖音小红书哔哩视频号企业微信社群小程序快闪店")
    assert len(m.group(2)) < 100_000


# --------------------------------------------------------------------------------------------
# the command


def test_the_command_writes_every_file_it_names(tmp_path):
    out = tmp_path / "report"
    r = CliRunner().invoke(main, ["report", str(PASTED), "--out", str(out)])
    assert r.exit_code == 0, r.stderr
    said = re.findall(r"^wrote the (?:chart|report) to (.+)$", r.stderr, flags=re.M)
    assert said[-1] == str(out / REPORT_FILE)
    assert {Path(s).name for s in said[:-1]} == {"curves.png", "allocation.png", "groups.png", "frontier.png"}
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(s).name for s in said)  # nothing else, no temp files
    page = (out / REPORT_FILE).read_text(encoding="utf-8")
    for chart in said[:-1]:
        data = Path(chart).read_bytes()
        assert data[:8] == PNG
        assert base64.b64encode(data).decode() in page  # the page embeds exactly the file written
    # a written-curve scenario has no forecast: the page and stderr say so instead of drawing nothing
    assert "left out: 2027-Q1 plan on pasted curves: forecast: the curves are written in the scenario" in r.stderr
    assert "Left out:" in page


def test_several_scenarios_get_a_comparison_and_a_section_each(tmp_path):
    other = tmp_path / "cut_offline.toml"
    other.write_text(PASTED.read_text(encoding="utf-8").replace("total = 10_000_000", "total = 8_000_000")
                     .replace('name = "2027-Q1 plan on pasted curves"', 'name = "cut 2 million"'), encoding="utf-8")
    out = tmp_path / "both"
    r = CliRunner().invoke(main, ["report", str(PASTED), str(other), "--out", str(out)])
    assert r.exit_code == 0, r.stderr
    names = {p.name for p in out.iterdir()}
    assert {"pasted_curves-curves.png", "cut_offline-curves.png", REPORT_FILE} <= names
    page = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert page.count("<section") == 2 and "cut 2 million" in page and "2027-Q1 plan on pasted curves" in page
    assert "comparison.png" in names  # `budget compare`'s chart and table, first
    assert "<h2>Comparison</h2><table>" in page and "¥8,000,000" in page and "¥10,000,000" in page
    assert page.count("<h3>Budget frontier</h3>") == 2  # `budget frontier`'s sweep, in each section


def test_an_infeasible_plan_is_reported_with_why_and_exits_4(tmp_path):
    out = tmp_path / "report"
    r = CliRunner().invoke(main, ["report", str(_hostile_scenario(tmp_path, infeasible=True)), "--out", str(out)])
    assert r.exit_code == 4, r.stderr
    page = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert "No plan satisfies every constraint" in page and "min_spend[douyin]" in page
    assert (out / "curves.png").read_bytes()[:8] == PNG  # the curves still say where the current plan sits
    assert r.stderr.rstrip().endswith(f"(the report explains why: {out / REPORT_FILE})")


def test_report_folders_that_cannot_be_written_are_refused_before_any_work(tmp_path):
    missing = tmp_path / "no" / "report"
    r = CliRunner().invoke(main, ["report", str(PASTED), "--out", str(missing)])
    assert r.exit_code == 2 and "does not exist" in r.stderr and "--out" in r.stderr
    a_file = tmp_path / "report.html"
    a_file.write_text("old")
    r = CliRunner().invoke(main, ["report", str(PASTED), "--out", str(a_file)])
    assert r.exit_code == 2 and "is a file" in r.stderr
    assert a_file.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    r = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2  # no scenario: a usage error


@pytest.mark.slow
def test_the_forecast_chart_continues_the_recorded_history():
    """`budget forecast --plot` and the report draw the recorded KPI before the horizon, the
    weeks just before it, exactly as the history file has them."""
    import csv

    from scenarios.plan import forecast_scenario
    from scenarios.report import forecast_chart

    sc = load_scenario(QUARTERLY)
    fc, _ = forecast_scenario(sc)
    data = forecast_chart(sc, fc)
    assert data["currency"] == "CNY" and data["periods"] == fc["periods"]
    h = data["history"]
    rows = list(csv.DictReader(open(example_path("history_weekly.csv"), encoding="utf-8")))
    assert h["dates"] == [r["date"] for r in rows[-52:]] and h["dates"][-1] < fc["periods"][0]
    assert h["actual"] == [float(r["revenue"]) for r in rows[-52:]]
    assert len(h["fitted"]) == 52


@pytest.mark.slow
def test_the_curve_band_says_what_its_samples_are():
    """The default fit's bands are posterior draws; the chart's legend must not call them bootstrap curves."""
    from scenarios.plan import plan_scenario
    from scenarios.report import _curves_data, _Section

    sc = load_scenario(QUARTERLY)
    data = _curves_data(_Section(sc, plan_scenario(sc)))
    assert sc.model.uncertainty()["method"] == "posterior"
    assert data["band_label"] == "P10–P90 of the posterior curve draws"
    assert all(c["p10"] is not None and c["p10"][-1] < c["p90"][-1] for c in data["channels"])


# --------------------------------------------------------------------------------------------
# the browser, as a person would (issue #12 §3)

BROWSERS = ("chromium", "chromium-browser")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--force-device-scale-factor=1")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _find_browser() -> str | None:
    named = os.environ.get("BUDGET_TEST_BROWSER")
    if named:
        return shutil.which(named) or (named if Path(named).is_file() else None)
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def _install_chromium() -> str:
    """Install Debian's chromium with apt-get; return why not when it cannot be done."""
    apt = shutil.which("apt-get")
    if apt is None:
        return ("no package manager this test knows how to use (apt-get) is available: install Chromium and set "
                "BUDGET_TEST_BROWSER to its binary")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "apt-get needs root: run `sudo apt-get install -y chromium` once, then the tests again"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]  # another apt run (a parallel test session) may hold the lock
    for cmd, timeout in (([apt, *lock, "update", "-q"], 600),
                         ([apt, *lock, "install", "-y", "-q", "--no-install-recommends", "chromium"], 1200)):
        try:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(cmd)}` did not finish within {timeout} s"
        if r.returncode != 0:
            return f"`{' '.join(cmd)}` failed ({r.returncode}): {(r.stderr or r.stdout)[-1500:]}"
    return ""


@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless-capable Chromium: found, or installed from Debian's packages (see the module)."""
    path = _find_browser()
    why = ""
    if path is None:
        why = _install_chromium()
        path = _find_browser()
        if path is None and not why:
            why = "apt-get installed chromium but no `chromium` binary is on PATH"
    if path is None:
        message = f"NOT TESTED IN A BROWSER: the HTML report needs headless Chromium, and {why}"
        if _in_ci():
            pytest.fail(message + " (CI must test the report in a browser)")
        warnings.warn(message, UserWarning, stacklevel=1)
        pytest.skip(message)
    return path


def _browse(browser: str, page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.absolute().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def quarterly_report(tmp_path_factory) -> tuple[Path, dict]:
    """The installed `budget` writes the quarterly example's report (a subprocess, as a user runs it)."""
    import json

    bin_dir = os.path.dirname(sys.executable)
    budget = shutil.which("budget", path=bin_dir)
    if budget is None:
        pytest.skip("`budget` is not installed (make test installs it)")
    out = tmp_path_factory.mktemp("browser") / "report"
    r = subprocess.run([budget, "report", str(QUARTERLY), "--out", str(out)], capture_output=True, text=True,
                       timeout=900, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # files only: a job's stdout stays clean (what it wrote is on stderr)
    assert f"wrote the report to {out / REPORT_FILE}" in r.stderr
    plan = subprocess.run([budget, "allocate", str(QUARTERLY), "--format", "json"], capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL)
    assert plan.returncode == 0, plan.stderr
    return out / REPORT_FILE, json.loads(plan.stdout)


@pytest.mark.slow
def test_the_report_opens_from_disk_in_chromium_with_every_image_and_the_plans_total(chromium, quarterly_report,
                                                                                     tmp_path):
    from optimizer.result import money

    page, plan = quarterly_report
    r = _browse(chromium, page, tmp_path, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = parse(r.stdout)
    assert not [t for t, _ in dom.tags if t == "script"]
    images = [a.get("src", "") for t, a in dom.tags if t == "img"]
    assert len(images) >= 4  # curves, allocation, groups, forecast (+ the frontier where installed)
    for src in images:  # no missing image: each is embedded and decodes to a real picture
        img = _image(src)
        assert img.width >= 400 and img.height >= 300
    shown = " ".join("".join(dom.text).split())
    assert plan["scenario"] in shown
    # the plan's totals, as `budget allocate` states them
    assert f"Budget {money(plan['budget'], plan['currency'])}" in shown
    assert money(plan["expected_return"], plan["currency"]) in shown
    assert money(plan["spend"], plan["currency"]) in shown
    assert "Douyin 抖音" in shown

    shot = tmp_path / "report.png"
    r = _browse(chromium, page, tmp_path, f"--screenshot={shot}", "--window-size=1280,2400")
    assert r.returncode == 0, r.stderr[-2000:]
    img = _image("data:image/png;base64," + base64.b64encode(shot.read_bytes()).decode())
    assert img.size == (1280, 2400)
    # The charts are painted, not just present: the curves' blue (matplotlib's C0) covers a good part.
    import numpy as np

    rgb = np.asarray(img.convert("RGB"), dtype=int)
    blue = int(np.sum(np.all(np.abs(rgb - (31, 119, 180)) < 40, axis=-1)))
    assert blue > 5_000, blue
    keep = os.environ.get("BUDGET_TEST_SCREENSHOT")  # to look at it: BUDGET_TEST_SCREENSHOT=shot.png pytest …
    if keep:
        shutil.copyfile(shot, keep)


def test_a_plan_that_returns_less_than_the_current_one_says_less(tmp_path):
    """A 100% reserve returns nothing where the current plan earned: "returns -100.0% more"."""
    from scenarios.plan import plan_scenario
    from scenarios.report import _Section, _summary

    path = tmp_path / "r.toml"
    path.write_text('[budget]\ntotal = 1_000_000\n[reserve]\nmin_share = 1.0\n'
                    '[channels.a]\ncurrent = 500_000\ncurve = {kind = "hill", beta = 2e6, k = 4e5, s = 1.0}\n',
                    encoding="utf-8")
    sc = load_scenario(path)
    html = _summary(_Section(sc, plan_scenario(sc)))
    assert "returns <b>100.0%</b> less." in html and "% more" not in html
