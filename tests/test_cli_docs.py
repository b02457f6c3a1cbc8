"""Shell completion and the man page, generated from the parser: every command, alias, cdb
action and option of the parser is in them; the bash script completes in a real bash, the
zsh script in a real zsh (when there is one); the man page renders without a warning, the
copy in docs/ is the current one, and the sdist ships it."""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest

from cli_helpers import environment, run
from confd_ha import cli_docs
from confd_ha.cli_parser import build_parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def everything():
    """(command words, option names) of the whole parser: commands with aliases, cdb actions,
    every documented option."""
    parser = build_parser()
    words, opts = set(), {o for op in cli_docs.options(parser) for o in op.names}
    for c in cli_docs.commands(parser):
        words.update((c.name,) + c.aliases)
        opts.update(n for op in cli_docs.options(c.parser) for n in op.names)
        for a in cli_docs.commands(c.parser):
            words.add(a.name)
            opts.update(n for op in cli_docs.options(a.parser) for n in op.names)
    return words, opts


def test_the_parser_has_what_the_docs_must_list():
    words, opts = everything()
    assert {"status", "be-master", "slave-dead", "cdb", "partition", "completion", "agent",
            "switchover", "failover", "pause", "resume"} <= words
    assert {"--nso", "--json", "--token-file", "--tick-timeout", "--prefix", "--kill", "--etcd",
            "--cluster", "--to", "--ttl", "--api-port", "--agent"} <= opts
    assert "--token" not in opts          # accepted, warned about, never advertised


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_lists_every_command_and_option(shell):
    p = run(["completion", shell])
    assert p.returncode == 0 and p.stderr == ""
    words, opts = everything()
    missing = [w for w in sorted(words | opts) if w not in p.stdout]
    assert not missing
    assert cli_docs.completion(shell) == p.stdout


BASH_CASES = [
    (["st"], {"status"}),
    (["be-s"], {"be-secondary", "be-slave"}),
    (["-q", "wa"], {"watch"}),
    (["status", "--ipc-p"], {"--ipc-port"}),
    (["status", "--flavour", ""], {"confd", "nso"}),
    (["cdb", "--ipc-port", "4565", "pa"], {"partition"}),
    (["cdb", "get", "/x", "--js"], {"--json"}),
    (["cdb", "upgrade", "o"], {"on", "off"}),
    (["cdb", "restart", "--k"], {"--kill"}),
    (["emulate", "--log-level", "d"], {"debug"}),
    (["completion", ""], {"bash", "zsh", "-h", "--help", "-q", "--quiet", "-v", "--verbose",
                          "--debug"}),
    (["status", "--token", "secret", "--js"], {"--json"}),
    (["agent", "sw"], {"switchover"}),
    (["agent", "--etcd", "http://127.0.0.1:2379", "li"], {"list"}),
    (["agent", "run", "--tt"], {"--ttl"}),
    (["agent", "failover", "--t"], {"--to", "--timeout"}),
    (["agent", "run", "--flavour", ""], {"confd", "nso"}),
    (["demo", "--ag"], {"--agent"}),
]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_in_bash(tmp_path):
    script = tmp_path / "confd-ha.bash"
    script.write_text(cli_docs.completion("bash"))
    lines = ["source %s" % script]
    for words, _ in BASH_CASES:
        quoted = " ".join("'%s'" % w for w in ["confd-ha"] + words)
        lines += ["COMP_WORDS=(%s); COMP_CWORD=%d; COMPREPLY=(); _confd_ha" % (quoted, len(words)),
                  'echo "${COMPREPLY[*]}"']
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(lines)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stderr == ""
    results = p.stdout.split("\n")
    for (words, want), got in zip(BASH_CASES, results):
        assert set(got.split()) == want, words


@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh")
def test_zsh_completion_in_zsh(tmp_path):
    """The script parses, and a real interactive zsh (driven through zpty) completes with it."""
    (tmp_path / "_confd-ha").write_text(cli_docs.completion("zsh"))
    assert subprocess.run(["zsh", "-n", str(tmp_path / "_confd-ha")]).returncode == 0
    driver = tmp_path / "drive.zsh"
    driver.write_text(r"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z 'PS1=""; fpath=(%s $fpath); autoload -U compinit; compinit -u -D; setopt nobeep'
zpty -w z 'print READY'
zpty -r z line '*READY*'
for input in "$@"; do
  zpty -w -n z "$input"$'\t'
  sleep 1
  out=""
  while zpty -r -t z chunk; do out+=$chunk; done
  print -r -- "=== $out"
  zpty -w z $'\x03'
  sleep 0.3
  while zpty -r -t z chunk; do :; done
done
zpty -d z
""" % tmp_path)
    inputs = ["confd-ha sta", "confd-ha cdb upgr", "confd-ha status --flavour n",
              "confd-ha agent switc"]
    p = subprocess.run(["zsh", "-f", str(driver)] + inputs, capture_output=True, text=True,
                       timeout=60, env=environment())
    shown = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out) for out in p.stdout.split("=== ")[1:]]
    assert len(shown) == 4, p.stdout + p.stderr
    assert "confd-ha status " in shown[0]
    assert "confd-ha cdb upgrade " in shown[1]
    assert "confd-ha status --flavour nso" in shown[2]
    assert "confd-ha agent switchover " in shown[3]


def test_man_page_lists_everything_and_renders_cleanly():
    page = run(["man"]).stdout
    assert page == cli_docs.man_page()
    unescaped = page.replace("\\-", "-").replace("\\fB", "").replace("\\fR", "").replace(
        "\\fI", "")
    words, opts = everything()
    missing = [w for w in sorted(words | opts) if w not in unescaped]
    assert not missing
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "NSO MODE", "JSON OUTPUT",
                    "ENVIRONMENT", "EXIT STATUS", "EXAMPLES"):
        assert ".SH %s" % section in page
    for var in ("CONFD_IPC_ADDR", "NCS_IPC_PORT", "CONFD_HA_TOKEN", "CONFD_IPC_ACCESS_FILE",
                "CONFD_HA_ETCD", "CONFD_HA_CLUSTER"):
        assert var in page
    if shutil.which("groff"):
        p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=page,
                           capture_output=True, text=True, timeout=60)
        assert (p.returncode, p.stderr) == (0, "")


def test_docs_man_page_is_current():
    with open(os.path.join(ROOT, "docs", "confd-ha.1"), encoding="utf-8") as f:
        assert f.read() == cli_docs.man_page(), \
            "docs/confd-ha.1 is stale: python -m confd_ha man > docs/confd-ha.1"


def test_help_of_each_command_is_generated_from_the_same_parser():
    parser = build_parser()
    for c in cli_docs.commands(parser):
        assert isinstance(c.parser, argparse.ArgumentParser)
        assert c.parser.description and c.parser.epilog and "exit status:" in c.parser.epilog


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "MANIFEST.in")), reason="no source tree")
def test_sdist_ships_the_man_page(tmp_path):
    # (run outside the source tree: pip leaves a build/ directory there that shadows `build`)
    if subprocess.run([sys.executable, "-c", "import build.__main__"], cwd=tmp_path,
                      capture_output=True).returncode != 0:
        pytest.skip("python -m build is needed to make an sdist (pip install build)")
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "wheelhouse", "*.egg-info", "__pycache__", "*.so",
        ".hypothesis", ".pytest_cache", ".mypy_cache"))
    p = subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path / "d"),
                        str(src)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    if p.returncode != 0 and ("No matching distribution" in p.stdout + p.stderr
                              or "Could not find a version" in p.stdout + p.stderr):
        pytest.skip("no package index for the build requirements")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    (sdist,) = glob.glob(str(tmp_path / "d" / "*.tar.gz"))
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert {"docs/confd-ha.1", "docs/cli.md", "docs/emulator.md"} <= names
