"""The scenario-script reader (scenarios/script.py): values, steps, and errors that name the
file and line."""

from __future__ import annotations

import pytest

from .scenarios import SCENARIOS, load, script


@pytest.mark.parametrize("text, want", [
    ("true", True), ("false", False), ("5", 5), ("-3", -3), ("1.5", 1.5),
    ("n2:NOPRIMARY", ("n2", "NOPRIMARY")), ("p*4", "pppp"), ("n1", "n1"), ("", ""),
    ("n1b", "n1b"), ("a:b", "a:b"), ("ab*2", "ab*2")])
def test_values(text, want):
    got = script.value(text)
    assert got == want and type(got) is type(want)


def test_a_script_becomes_calls_in_order():
    text = ("# comment\n\nx_one  nodes=2 tick=4.0 quirks=true\n"
            "  | first line\n  |   second  line\n"
            "  subscribe n2 sync=true\n  besecondary n2 \"\" n1 n1 wait=false\n"
            "  wait n2:NOPRIMARY within=5\n")
    [(name, opts, doc, steps)] = script.parse(text, "x.scn")
    assert (name, opts, doc) == ("x_one", {"nodes": 2, "tick": 4.0, "quirks": True},
                                 "first line second line")
    calls = []

    class World:
        def __getattr__(self, verb):
            return lambda *a, **k: calls.append((verb, a, k))

    script.play(steps)(World())
    assert calls == [("subscribe", ("n2",), {"sync": True}),
                     ("besecondary", ("n2", "", "n1", "n1"), {"wait": False}),
                     ("wait", (("n2", "NOPRIMARY"),), {"within": 5})]


@pytest.mark.parametrize("text, where", [
    ("a nodes=1\n  frobnicate n1\n", "x.scn:2: unknown step 'frobnicate'"),
    ("  status n1\n", "x.scn:1: a step before the first scenario header"),
    ("a nodes\n", "x.scn:1:"),
    ("a nodes=1\n  status \"n1\n", "x.scn:2:")])
def test_errors_name_file_and_line(text, where):
    with pytest.raises(script.ScriptError) as e:
        script.parse(text, "x.scn")
    assert str(e.value).startswith(where)


def test_scripts_and_functions_load_once():
    first = dict(load())
    assert load() == first == SCENARIOS
    assert "fault_kill_secondary" in first and "ipc_hello_not_a_hello" in first
