"""Scenario validation of held-out bad inputs (issue #8): files that start with a UTF-8
byte-order mark."""

import pytest

from scenarios import ScenarioError, load_scenario

BASE = """
[budget]
total = 1_000_000
[channels.douyin]
group = "g1"
current = 400_000
curve = { kind = "hill", beta = 2e6, k = 5e5, s = 0.8 }
[channels.scrm]
group = "g2"
current = 500_000
curve = { kind = "exponential", beta = 1e6, k = 3e5 }
"""


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def problems_of(tmp_path, text, **kw):
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text), **kw)
    return err.value.problems


# --- a UTF-8 byte-order mark (Windows Notepad) -------------------------------------------------

BOM = b"\xef\xbb\xbf"


def test_a_byte_order_mark_is_accepted(tmp_path):
    text = 'name = "t"\n' + BASE
    p = tmp_path / "notepad.toml"
    p.write_bytes(BOM + text.encode("utf-8"))
    assert load_scenario(p).problem == load_scenario(write(tmp_path, text)).problem


def test_with_a_byte_order_mark_errors_keep_their_true_line_and_column(tmp_path):
    text = 'name = "t"\nbudget = \n'
    p = tmp_path / "notepad.toml"
    p.write_bytes(BOM + text.encode("utf-8"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(p)
    assert err.value.problems == problems_of(tmp_path, text)
    assert err.value.problems[0].startswith("not valid TOML: ") and "(at line 2, column 10)" in err.value.problems[0]

