"""The agent's configuration: :class:`AgentConfig`, the TOML file, overrides, validation.

A configuration file (TOML; every setting optional but ``cluster`` and ``node_id``)::

    cluster = "main"                 # the etcd prefix is /confd-ha/<cluster>/
    node_id = "n1"                   # this node's HA node id
    flavour = "confd"                # or "nso": the default IPC port (4565 / 4569)
    ipc_address = "127.0.0.1"        # where the node's IPC port listens
    ipc_port = 4565                  # or ipc_path = "/run/confd.sock"
    ha_address = "10.0.0.1"          # where the others reach this node's HA port
                                     #   (default: ipc_address)
    token_file = "/etc/confd-ha/token"   # or the environment variable CONFD_HA_TOKEN
    etcd = ["http://10.0.0.11:2379", "http://10.0.0.12:2379", "http://10.0.0.13:2379"]
    ttl = 10                         # the lease, seconds (integer >= 2)
    loop_wait = 2                    # seconds between loops (default ttl / 5)
    order_timeout = 1                # seconds an HA order may take (benone, beprimary, status)
    join_timeout = 15                # seconds a synchronous besecondary may take
    etcd_timeout = 1                 # seconds an etcd request may take (default min(1, ttl/4))
    api_address = "127.0.0.1"        # the health endpoint (default localhost only)
    api_port = 8008

The HA token is a secret: it is read from ``token_file`` (one trailing newline removed) or
from ``CONFD_HA_TOKEN``, never from the file itself, and it appears in no repr, log or error.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .._args import MAX_TOKEN_FILE
from .._consts import is_int
from .._settings import FLAVOURS, TOKEN_ENV as TOKEN_ENV

_CLUSTER_RE = re.compile(r"^[A-Za-z0-9._-]+$")


class ConfigError(ValueError):
    """The configuration is not usable; :attr:`problems` holds one message per problem."""

    def __init__(self, problems: List[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclasses.dataclass
class AgentConfig:
    """One agent's settings (see the module docstring). ``token`` is never shown."""

    cluster: str
    node_id: str
    token: str = dataclasses.field(default="", repr=False)
    ipc_address: str = "127.0.0.1"
    ipc_port: Optional[int] = None        # None: the flavour's default
    ipc_path: Optional[str] = None
    flavour: str = "confd"
    ha_address: Optional[str] = None      # None: ipc_address
    etcd: List[str] = dataclasses.field(default_factory=lambda: ["http://127.0.0.1:2379"])
    ttl: int = 10
    loop_wait: Optional[float] = None     # None: ttl / 5
    order_timeout: float = 1.0
    join_timeout: float = 15.0
    etcd_timeout: Optional[float] = None  # None: min(1, ttl / 4)
    api_address: str = "127.0.0.1"
    api_port: int = 8008
    token_file: Optional[str] = None

    # ------------------------------------------------------------ derived values

    @property
    def port(self) -> int:
        """The IPC port in use (``ipc_port`` or the flavour's default)."""
        if self.ipc_port is not None:
            return self.ipc_port
        return FLAVOURS.get(self.flavour, FLAVOURS["confd"]).default_port

    @property
    def ha_ip(self) -> str:
        return self.ha_address or self.ipc_address

    @property
    def wait(self) -> float:
        """``loop_wait`` or its default."""
        return self.loop_wait if self.loop_wait is not None else self.ttl / 5

    @property
    def etcd_deadline(self) -> float:
        return self.etcd_timeout if self.etcd_timeout is not None else min(1.0, self.ttl / 4)

    @property
    def margin(self) -> float:
        """How long before its lease can expire a leader demotes: loop_wait + order_timeout."""
        return self.wait + self.order_timeout

    @property
    def ipc_text(self) -> str:
        if self.ipc_path:
            return self.ipc_path
        if ":" in self.ipc_address:
            return "[%s]:%d" % (self.ipc_address, self.port)
        return "%s:%d" % (self.ipc_address, self.port)

    def to_dict(self) -> Dict[str, Any]:
        """The settings as a JSON-able dict, the token left out."""
        d = dataclasses.asdict(self)
        d.pop("token", None)
        d.update(ipc_port=self.port, ha_address=self.ha_ip, loop_wait=self.wait,
                 etcd_timeout=self.etcd_deadline)
        return d

    def validate(self) -> "AgentConfig":
        """Raise :class:`ConfigError` listing every problem; return self when there is none."""
        problems = _problems(self)
        if problems:
            raise ConfigError(problems)
        return self


def _problems(c: AgentConfig) -> List[str]:
    p: List[str] = []
    if not isinstance(c.cluster, str) or not c.cluster:
        p.append("cluster must be set (a name: letters, digits, '.', '_', '-')")
    elif not _CLUSTER_RE.match(c.cluster):
        p.append("cluster must consist of letters, digits, '.', '_' and '-' only")
    if not isinstance(c.node_id, str) or not c.node_id:
        p.append("node_id must be set")
    if c.flavour not in FLAVOURS:
        p.append("flavour must be 'confd' or 'nso'")
    if not _is_ip(c.ipc_address):
        p.append("ipc_address must be an IP address")
    if c.ipc_port is not None and not _is_int_in(c.ipc_port, 1, 65535):
        p.append("ipc_port must be an integer 1..65535")
    if c.ipc_path is not None and c.ipc_port is not None:
        p.append("give ipc_port or ipc_path, not both")
    if c.ipc_path is not None and (not isinstance(c.ipc_path, str) or not c.ipc_path):
        p.append("ipc_path must be a file system path")
    if c.ha_address is not None and not _is_ip(c.ha_address):
        p.append("ha_address must be an IP address")
    if not isinstance(c.etcd, list) or not c.etcd:
        p.append("etcd must list at least one endpoint, e.g. [\"http://127.0.0.1:2379\"]")
    else:
        for e in c.etcd:
            if not isinstance(e, str) or not re.match(r"^https?://[^/\s]+/?$", e):
                p.append("etcd endpoint %r must be http://host:port or https://host:port"
                         % (e if isinstance(e, str) else type(e).__name__))
    if not _is_int_in(c.ttl, 2, 10 ** 6):
        p.append("ttl must be an integer number of seconds >= 2")
    timings_ok = True
    for name in ("loop_wait", "order_timeout", "join_timeout", "etcd_timeout"):
        v = getattr(c, name)
        if v is None and name in ("loop_wait", "etcd_timeout"):
            continue
        if not _is_number(v) or not v > 0:
            p.append("%s must be a number of seconds > 0" % name)
            timings_ok = False
    if timings_ok and _is_int_in(c.ttl, 2, 10 ** 6):
        if c.wait > c.ttl / 3:
            p.append("loop_wait must be at most ttl / 3 (%.3g s)" % (c.ttl / 3))
        if not c.ttl > 2 * c.wait + c.order_timeout:
            p.append("ttl must be > 2 * loop_wait + order_timeout (here %.3g <= %.3g)"
                     % (c.ttl, 2 * c.wait + c.order_timeout))
        if not c.ttl > c.margin + c.order_timeout:
            # A promotion needs now + order_timeout < deadline - margin, and even a renewal
            # just answered leaves at most ttl: below this no leader may ever order beprimary
            # (ttl 2 with the default timings was accepted, and nobody was ever elected).
            p.append("ttl must be > loop_wait + 2 * order_timeout, or a leader can never "
                     "promote its node (here %.3g <= %.3g)"
                     % (c.ttl, c.margin + c.order_timeout))
    if not isinstance(c.token, str):
        p.append("the HA token must be text")
    if not _is_ip(c.api_address):
        p.append("api_address must be an IP address")
    if not _is_int_in(c.api_port, 0, 65535):
        p.append("api_port must be an integer 0..65535 (0: any free port)")
    return p


def _is_ip(v: object) -> bool:
    if not isinstance(v, str):
        return False
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int_in(v: object, lo: int, hi: int) -> bool:
    return is_int(v) and lo <= v <= hi


# ---------------------------------------------------------------- loading

_FIELDS = {f.name: f for f in dataclasses.fields(AgentConfig)}
# Fields that CLI overrides may give as text: field -> (conversion, what it must be).
_TEXT_NUMBERS: Dict[str, Tuple[Callable[[str], Any], str]] = {
    **dict.fromkeys(("ttl", "ipc_port", "api_port"), (int, "an integer")),
    **dict.fromkeys(("loop_wait", "order_timeout", "join_timeout", "etcd_timeout"),
                    (float, "a number of seconds")),
}


def _toml_load(path: str) -> Dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib as toml
    else:  # pragma: no cover - exercised on Python < 3.11 only
        try:
            import tomli as toml
        except ImportError:
            raise ConfigError(["reading %s needs the 'tomli' package on Python < 3.11: "
                               "pip install 'confd-ha[agent]'" % path]) from None
    try:
        with open(path, "rb") as f:
            data: Dict[str, Any] = toml.load(f)
    except OSError as exc:
        raise ConfigError(["cannot read the configuration %s: %s"
                           % (path, exc.strerror or exc)]) from None
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(["%s is not valid TOML: %s" % (path, exc)]) from None
    return data


def _coerce(name: str, value: Any, problems: List[str]) -> Any:
    """CLI overrides may come as text: numbers and lists are converted here."""
    if isinstance(value, str) and name in _TEXT_NUMBERS:
        convert, what = _TEXT_NUMBERS[name]
        try:
            return convert(value)
        except ValueError:
            problems.append("%s must be %s, not %r" % (name, what, value))
            return None
    if name == "ttl" and isinstance(value, float) and value.is_integer():
        return int(value)
    if name == "etcd" and isinstance(value, str):
        return [e.strip() for e in value.split(",") if e.strip()]
    if name == "etcd" and isinstance(value, tuple):
        return list(value)
    return value


def read_token(token_file: Optional[str], environ: Optional[Mapping[str, str]] = None
               ) -> Tuple[Optional[str], Optional[str]]:
    """``(token, problem)``: the token from ``token_file``, else from ``CONFD_HA_TOKEN``."""
    env = os.environ if environ is None else environ
    if token_file:
        try:
            with open(token_file, "rb") as f:
                raw = f.read(MAX_TOKEN_FILE + 1)
        except OSError as exc:
            return None, "cannot read token_file %s: %s" % (token_file, exc.strerror or exc)
        if len(raw) > MAX_TOKEN_FILE:
            return None, "token_file %s is longer than %d KiB: not a token file" % (
                token_file, MAX_TOKEN_FILE // 1024)
        if raw.endswith(b"\r\n"):
            raw = raw[:-2]
        elif raw.endswith(b"\n"):
            raw = raw[:-1]
        if not raw:
            return None, "token_file %s is empty" % token_file
        try:
            return raw.decode("utf-8"), None
        except UnicodeDecodeError:
            return None, "token_file %s is not UTF-8 text" % token_file
    token = env.get(TOKEN_ENV)
    if token:
        return token, None
    return None, ("no HA token: set token_file in the configuration or the environment "
                  "variable %s" % TOKEN_ENV)


def load_config(path: Optional[str] = None, overrides: Optional[Mapping[str, Any]] = None, *,
                environ: Optional[Mapping[str, str]] = None) -> AgentConfig:
    """Read the TOML file ``path`` (None: none), apply ``overrides`` (setting -> value; None
    values are ignored, so that unset command-line options change nothing), read the token
    and validate. Raises :class:`ConfigError` with one message per problem."""
    problems: List[str] = []
    values: Dict[str, Any] = {}
    sources: List[Tuple[str, Mapping[str, Any]]] = []
    if path is not None:
        sources.append((path, _toml_load(path)))
    if overrides:
        sources.append(("the command line", overrides))
    for where, data in sources:
        for name, value in data.items():
            if value is None:
                continue
            if name == "token":
                problems.append("%s: the HA token is not a setting; put it in token_file or "
                                "in the environment variable %s" % (where, TOKEN_ENV))
                continue
            if name not in _FIELDS:
                problems.append("%s: unknown setting %r" % (where, name))
                continue
            values[name] = _coerce(name, value, problems)
    values.setdefault("cluster", "")
    values.setdefault("node_id", "")
    token, problem = read_token(values.get("token_file"), environ)
    if problem:
        problems.append(problem)
    values = {k: v for k, v in values.items() if v is not None or k in ("cluster", "node_id")}
    try:
        config = AgentConfig(token=token or "", **values)
    except TypeError as exc:  # pragma: no cover - every name was checked above
        raise ConfigError(problems + [str(exc)]) from None
    problems.extend(_problems(config))
    if problems:
        raise ConfigError(problems)
    return config
