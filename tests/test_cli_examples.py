"""Every example a user can copy runs: each command's `--help` Example block and each `budget …`
command and history mapping in README.md, run by the installed `budget` in a scratch folder.

A newcomer copies these first; an example that exits 3 (as `budget fit --help`'s Robyn example
once did) teaches them the product is broken.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from cli import main
from models.generate import generate_history
from scenarios import example_path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = os.path.dirname(sys.executable)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("budget", path=BIN) is None, reason="`budget` is not installed (make test installs it)"),
]


def help_examples() -> list[str]:
    """The commands in every `Example:` block of `budget … --help` (continuation lines joined)."""
    import click

    commands = []

    def walk(cmd: click.Command, prefix: str) -> None:
        doc = cmd.help or ""
        if "Example:" in doc:
            block = doc.split("Example:", 1)[1]
            text = re.sub(r"\\\n\s*", " ", block)
            commands.extend(line.strip() for line in text.splitlines() if line.strip().startswith("budget "))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{prefix} {name}")

    walk(main, "budget")
    return list(dict.fromkeys(commands))


def readme_commands() -> list[str]:
    """`budget …` commands in README.md, in code spans or code blocks, without placeholders."""
    found = re.findall(r"`(budget [^`]+)`", README)
    found += [m.strip() for m in re.findall(r"^\s*(budget [^\n#]+)", README, flags=re.M)]
    runnable = []
    for cmd in (" ".join(c.split()) for c in found):
        if re.search(r"[A-Z]{3,}|\[|\||…|\.\.\.", cmd.split(" ", 2)[-1] if " " in cmd else cmd):
            continue  # a synopsis with placeholders (SCENARIO, [--format …]), not a command to copy
        if not re.search(r"\.(toml|csv)\b", cmd):
            continue  # a flag named in prose (`budget fit --out`), not a command
        runnable.append(cmd.strip())
    return list(dict.fromkeys(runnable))


def robyn_like(path: Path) -> None:
    """A history with the columns of Robyn's demo data (dt_simulated_weekly.csv)."""
    h = generate_history()
    rng = np.random.default_rng(1)
    n = len(h)
    out = {
        "DATE": h["date"], "revenue": h["revenue"], "tv_S": h["douyin"], "ooh_S": h["popup_stores"],
        "print_S": h["bilibili"], "facebook_I": h["xiaohongshu"] * 30, "search_clicks_P": h["aigc_tools"] / 2,
        "search_S": h["aigc_tools"], "competitor_sales_B": 5e6 + rng.normal(0, 1e5, n),
        "facebook_S": h["xiaohongshu"], "events": np.where(rng.random(n) < 0.05, "event2", "na"),
        "newsletter": rng.integers(0, 2, n) * 1000.0,
    }
    import pandas as pd

    pd.DataFrame(out).to_csv(path, index=False)


def meridian_like(path: Path) -> None:
    """A history with the columns of Meridian's national sample (national_media.csv)."""
    import pandas as pd

    h = generate_history()
    rng = np.random.default_rng(2)
    n = len(h)
    out = {"time": h["date"]}
    for i, ch in enumerate(("douyin", "xiaohongshu", "bilibili", "wecom_community", "popup_stores")):
        out[f"Channel{i}_impression"] = h[ch] * 40
        out[f"Channel{i}_spend"] = h[ch]
    out["competitor_activity_score_control"] = rng.normal(0, 1, n)
    out["sentiment_score_control"] = rng.normal(0, 1, n)
    out["conversions"] = h["revenue"] / 100.0
    out["revenue_per_conversion"] = 100.0
    pd.DataFrame(out).to_csv(path, index=False)


def long_report_like(path: Path) -> None:
    """A long-layout channel report under Chinese column names (渠道周报.csv: 日期, 渠道, 花费, GMV)."""
    import pandas as pd

    h = generate_history()
    pd.concat([pd.DataFrame({"日期": h["date"], "渠道": ch, "花费": h[ch], "GMV": h[ch] * roi})
               for ch, roi in (("douyin", 3.1), ("xiaohongshu", 2.4), ("scrm", 1.7))]).to_csv(path, index=False)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A folder laid out as the examples expect: scenarios/examples/…, the peers' samples."""
    root = tmp_path_factory.mktemp("examples")
    shutil.copytree(example_path().parent, root / "scenarios" / "examples")
    robyn_like(root / "dt_simulated_weekly.csv")
    meridian_like(root / "national_media.csv")
    long_report_like(root / "渠道周报.csv")
    # The `budget runs` examples read a ledger with a plan of record in it, whatever order they run in.
    r = run_shell("budget allocate scenarios/examples/pasted_curves.toml --record --ledger q1.sqlite", root)
    assert r.returncode == 0, r.stderr
    # … and the `budget rebalance` examples one for the month-by-month example.
    r = run_shell("budget allocate scenarios/examples/monthly.toml --record --ledger q1.sqlite", root)
    assert r.returncode == 0, r.stderr
    return root


def run_shell(cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    if "cache clear" in cmd:  # not the test session's cache: the other examples reuse its fits
        env["BUDGET_CACHE_DIR"] = str(cwd / "cleared-cache")
    return subprocess.run(["sh", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL)


def test_there_are_examples_to_run():
    assert len(help_examples()) >= 12
    assert len(readme_commands()) >= 6


@pytest.mark.parametrize("cmd", help_examples())
def test_help_example_runs(cmd, scratch):
    r = run_shell(cmd, scratch)
    assert r.returncode == 0, f"{cmd}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("cmd", readme_commands())
def test_readme_command_runs(cmd, scratch):
    r = run_shell(cmd, scratch)
    assert r.returncode == 0, f"{cmd}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr


def readme_history_tables() -> list[tuple[str, dict]]:
    """The `[history]` mappings README gives for the peers' public samples."""
    out = []
    for block in re.findall(r"```toml\n(.*?)```", README, flags=re.S):
        for part in re.split(r"\n(?=# )", block):
            if "[history]" in part and "path = " in part:
                title = part.strip().splitlines()[0]
                body = part[part.index("[history]"):]
                data = tomllib.loads(body)
                if data["history"]["path"] in ("dt_simulated_weekly.csv", "national_media.csv"):
                    out.append((title, data))
    return out


def test_readme_gives_both_peer_mappings():
    assert {d["history"]["path"] for _, d in readme_history_tables()} == {"dt_simulated_weekly.csv", "national_media.csv"}


@pytest.mark.parametrize("title,data", readme_history_tables(), ids=lambda v: v if isinstance(v, str) else "")
def test_readme_history_mapping_reads_a_sample_with_those_columns(title, data, scratch):
    """The mapping must name columns the sample has: `budget fit` on it exits 0."""
    import tomllib as _  # noqa: F401  (the mapping parsed above)

    table = dict(data["history"], bootstrap=0, holdout=0)
    lines = ["[history]"] + [f"{k} = {_toml(v)}" for k, v in table.items()]
    scenario = scratch / f"fit_{table['path'].split('.')[0]}.toml"
    scenario.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run_shell(f"budget fit {scenario.name} --format json", scratch)
    assert r.returncode == 0, f"{title}\n{r.stderr[-3000:]}"


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    return repr(v)
