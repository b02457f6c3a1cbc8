"""Type checking: the whole package passes mypy with every --strict flag (pyproject.toml
[tool.mypy]), and a user's own file checked with ``mypy --strict`` sees the real types of the
public API through the installed package's annotations (``py.typed``)."""

from __future__ import annotations

import os
import re
import site
import subprocess
import sys
import textwrap

import pytest

import confd_ha

pytest.importorskip("mypy", reason="mypy is part of the 'test' extra: pip install '.[test]'")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLIC = ["confd_ha/__init__.py", "confd_ha/error.py", "confd_ha/events.py", "confd_ha/aio.py",
          "confd_ha/value.py", "confd_ha/ncs/__init__.py", "confd_ha/ncs/events.py",
          "confd_ha/ncs/aio.py"]


def mypy(args, cwd, env=None):
    """Run mypy (no cache, so that every run checks what is on disk); (exit code, output)."""
    run = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", os.devnull, *args],
                         cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=300)
    return run.returncode, run.stdout


def test_package_passes_its_mypy_configuration():
    code, out = mypy(["--config-file", os.path.join(ROOT, "pyproject.toml")], ROOT)
    assert code == 0, out


def test_public_modules_pass_mypy_strict():
    code, out = mypy(["--strict", "--config-file", os.path.join(ROOT, "pyproject.toml"),
                      *PUBLIC], ROOT)
    assert code == 0, out
    assert "Success" in out


# ---------------------------------------------------------------- a user's view


def _user_env(tmp_path):
    """mypy's environment for a user's file in ``tmp_path``: the package as this Python has it
    installed. A regular install (the README's set-up, CI) is found the way a user's mypy finds
    it, through site-packages and py.typed; an editable install or a source tree on sys.path,
    which mypy cannot see through import hooks, through MYPYPATH."""
    package_dir = os.path.dirname(os.path.abspath(confd_ha.__file__))
    assert os.path.isfile(os.path.join(package_dir, "py.typed"))
    env = dict(os.environ)
    env.pop("MYPYPATH", None)
    parent = os.path.dirname(package_dir)
    site_dirs = [os.path.abspath(p) for p in site.getsitepackages() + [site.getusersitepackages()]]
    if parent not in site_dirs:
        env["MYPYPATH"] = parent
    return env


USER_CODE = '''
import asyncio
import socket
from typing import Dict, List, Tuple

import confd_ha as ha
import confd_ha.ncs as ncs
from confd_ha import aio, error, events


def take_over(s: socket.socket) -> Tuple[int, List[Dict[str, str]]]:
    ha.connect(s, "token", "127.0.0.1", ha.PORT)
    ha.beprimary(s, "n1")
    ha.besecondary(s, "n2", "n1", "10.0.0.1", True)
    ha.beslave(s, b"n2", masterid=ha.Value("n1", ha.C_BUF), masterip="10.0.0.1", waitreply=1)
    ha.secondary_dead(s, "n3")
    ha.benone(s)
    ha.configure(proto_vsn=82)
    reveal_type(ha.status(s))
    reveal_type(ncs.status(s))
    reveal_type(events.read_notification(s))
    reveal_type(error.ERR_HA_BADTOKEN)
    reveal_type(ha.daemon_info(s))
    state, nodes = ha.status(s)
    return state, nodes


def explain(e: error.Error) -> str:
    reveal_type(e.confd_errno)
    return "%s: %s" % (error.strerror(e.confd_errno), e.confd_lasterr)


async def watch() -> None:
    async with await aio.connect("token", timeout=1.0) as conn:
        reveal_type(await conn.status())
    stream = await aio.notifications_connect(events.NOTIF_HA_INFO | events.NOTIF_HA_INFO_SYNC)
    async with stream:
        async for n in stream:
            if n["type"] == events.NOTIF_HA_INFO:
                await stream.sync()


asyncio.run(watch())
'''

MISTAKES = '''
import socket
import confd_ha as ha
from confd_ha import error

s = socket.socket()
ha.beprimary(s, 5)
nodes: str = ha.status(s)[1]
ha.connect("127.0.0.1", "token")
code: str = error.ERR_OS
'''


def _reveals(out):
    """The revealed types, in the notation of current mypy versions."""
    types = re.findall(r'Revealed type is "(.*)"', out)
    return [t.replace("builtins.", "").replace("Tuple[", "tuple[").replace("List[", "list[")
            .replace("Dict[", "dict[").replace("Union[", "union[") for t in types]


def test_users_strict_mypy_sees_real_types(tmp_path):
    (tmp_path / "user_code.py").write_text(textwrap.dedent(USER_CODE))
    code, out = mypy(["--strict", "--python-executable", sys.executable, "user_code.py"],
                     str(tmp_path), _user_env(tmp_path))
    assert code == 0, out
    status = "tuple[int, list[dict[str, str]]]"
    reveals = _reveals(out)
    assert reveals[:4] == [status, status, "dict[str, Any]", "int"], out
    assert "Hello" in reveals[4] and "None" in reveals[4], out          # daemon_info
    assert reveals[5:] == ["int", status], out


def test_users_strict_mypy_finds_mistakes(tmp_path):
    (tmp_path / "mistakes.py").write_text(textwrap.dedent(MISTAKES))
    code, out = mypy(["--strict", "--python-executable", sys.executable, "mistakes.py"],
                     str(tmp_path), _user_env(tmp_path))
    assert code == 1, out
    assert 'Argument 2 to "beprimary" has incompatible type "int"' in out, out
    assert re.search(r'Incompatible types in assignment \(expression has type "(builtins\.)?'
                     r'(list|List)\[', out), out
    assert 'Argument 1 to "connect" has incompatible type "str"; expected "socket"' in out, out
    assert re.search(r'expression has type "int", variable has type "str"', out), out
