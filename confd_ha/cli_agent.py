"""``confd-ha agent``: run the HA agent of one node, and the operator's actions (``list``,
``switchover``, ``failover``, ``pause``, ``resume``) -- the command-line face of
:mod:`confd_ha.agent` (docs/agent.md).

The agent's dependencies (httpx; tomli before Python 3.11) are an optional extra: this
module is imported only for ``confd-ha agent``, and the first thing it does is to say
``pip install 'confd-ha[agent]'`` when they are missing. Settings come from the TOML file
(``--config``), then the environment (``$CONFD_HA_ETCD``, ``$CONFD_HA_CLUSTER``), then the
options. Failures are raised and turned into messages by :func:`confd_ha.cli_errors.classify`
(etcd's endpoints are the target).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from .cli_errors import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, CliError, Context, hostport, usage
from .cli_output import dumps, escape, stderr_log
from .cli_parser_agent import DEFAULT_ETCD, cluster_name, etcd_endpoints

log = logging.getLogger("confd_ha.agent")

AGENT_EXTRA = "pip install 'confd-ha[agent]' (in a clone of the project: pip install '.[agent]')"
ENV_ETCD = "CONFD_HA_ETCD"
ENV_CLUSTER = "CONFD_HA_CLUSTER"
OPS_TIMEOUT = 5.0        # list, pause, resume: the longest wait for etcd
CHANGE_TIMEOUT = 30.0    # switchover, failover: the longest wait for the change
REQUEST_TIMEOUT = 5.0    # ... and for each of their etcd requests
PROBE_TIMEOUT = 2.0      # run: the first etcd request, at start
_RUN_OPTIONS = ("cluster", "node_id", "flavour", "ipc_address", "ipc_port", "ipc_path",
                "ha_address", "token_file", "etcd", "ttl", "loop_wait", "order_timeout",
                "join_timeout", "api_address", "api_port")


def require_agent_dependencies() -> None:
    """CliError (exit 2) naming the extra to install when httpx cannot be imported."""
    try:
        import httpx  # noqa: F401
    except ImportError as exc:
        raise CliError("the agent needs the Python package httpx (%s): %s"
                       % (exc, AGENT_EXTRA), EXIT_USAGE, "not-installed") from None


def cmd_agent(args: Any, ctx: Context, out: Any, err: Any) -> int:
    require_agent_dependencies()
    if args.action == "run":
        return run_agent(args, ctx, out, err)
    return run_operator(args, ctx, out)


# ---------------------------------------------------------------- settings


def _environment(environ: Mapping[str, str]) -> Dict[str, Any]:
    """$CONFD_HA_ETCD and $CONFD_HA_CLUSTER, checked as strictly as the options."""
    found: Dict[str, Any] = {}
    for name, key, check in ((ENV_ETCD, "etcd", etcd_endpoints),
                             (ENV_CLUSTER, "cluster", cluster_name)):
        value = environ.get(name)
        if value:
            try:
                found[key] = check(value)
            except Exception as exc:  # argparse.ArgumentTypeError: the option's words
                raise usage("$%s: %s" % (name, exc)) from None
    return found


def _options(args: Any, names: Tuple[str, ...]) -> Dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def where(args: Any, environ: Optional[Mapping[str, str]] = None) -> Tuple[str, List[str]]:
    """``(cluster, etcd endpoints)`` of an operator action: the options, else the
    environment, else the configuration file, else the default endpoint."""
    from .agent.config import ConfigError, _toml_load

    settings: Dict[str, Any] = {}
    if getattr(args, "config", None) is not None:
        data = _toml_load(args.config)
        for key, check in (("cluster", cluster_name), ("etcd", etcd_endpoints)):
            value = data.get(key)
            if value is None:
                continue
            if key == "etcd" and isinstance(value, list) and all(isinstance(v, str)
                                                                 for v in value):
                value = ",".join(value)
            try:
                settings[key] = check(value) if isinstance(value, str) else check("")
            except Exception as exc:
                raise ConfigError(["%s: %s: %s" % (args.config, key, exc)]) from None
    settings.update(_environment(os.environ if environ is None else environ))
    settings.update(_options(args, ("cluster", "etcd")))
    if "cluster" not in settings:
        raise usage("no cluster name: give --cluster NAME, $%s or --config FILE" % ENV_CLUSTER)
    return settings["cluster"], settings.get("etcd", [DEFAULT_ETCD])


# ---------------------------------------------------------------- operator actions


def run_operator(args: Any, ctx: Context, out: Any) -> int:
    from .agent import ops
    from .agent.etcd import EtcdClient

    cluster, endpoints = where(args)
    ctx.target = ", ".join(endpoints)
    action = args.action
    change = action in ("switchover", "failover")
    timeout = args.timeout or (CHANGE_TIMEOUT if change else OPS_TIMEOUT)
    ctx.timeout = timeout

    async def go() -> Dict[str, Any]:
        deadline = min(timeout, REQUEST_TIMEOUT) if change else timeout
        async with EtcdClient(endpoints, timeout=deadline) as client:
            if action == "list":
                return await ops.cluster_view(client, cluster)
            if action == "pause":
                return await ops.pause(client, cluster)
            if action == "resume":
                return await ops.resume(client, cluster)
            if action == "switchover":
                return await ops.switchover(client, cluster, args.to, timeout=timeout)
            return await ops.failover(client, cluster, getattr(args, "to", None),
                                      timeout=timeout)

    result = asyncio.run(go())
    if args.json:
        print(dumps(result), file=out)
    elif action == "list":
        print_cluster(result, out)
    elif not args.quiet:
        print(result_line(action, result), file=out)
    return EXIT_OK


def result_line(action: str, r: Dict[str, Any]) -> str:
    if action == "pause":
        return ("cluster %s paused: the agents order nothing until `confd-ha agent resume`"
                % escape(r["cluster"]))
    if action == "resume":
        return "cluster %s %s" % (escape(r["cluster"]), "resumed" if r.get("was_paused")
                                  else "was not paused")
    return "%s done in %.2f s: %s is the primary (leader)%s" % (
        action, r["seconds"], escape(r["leader"]),
        ", was %s" % escape(r["from"]) if r.get("from") else "")


def print_cluster(view: Dict[str, Any], out: Any) -> None:
    """``agent list`` as text: a heading, then one row per member (values escaped)."""
    leader = view.get("leader") or {}
    head = ["cluster %s" % escape(view["cluster"]),
            "leader %s" % (escape(leader["node"]) if leader else "none")]
    if leader.get("since"):
        head[-1] += " (since %s)" % escape(leader["since"])
    head.append("paused" if view.get("paused") else "not paused")
    print(", ".join(head), file=out)
    req = view.get("request")
    if req:
        print("request: %s to %s (id %s, %s)" % (escape(req["kind"]), escape(
            req.get("to") or "any node"), escape(req["id"]), escape(req["requested"])),
            file=out)
    rows = [("NODE", "ROLE", "STATE", "PRIMARY", "HA ADDRESS", "API", "HEALTH")]
    for m in view.get("members", []):
        role = "leader" if leader and m.get("node") == leader.get("node") else "-"
        rows.append((escape(m.get("node")), role, escape(m.get("state")),
                     escape(m.get("primary") or "-"), escape(m.get("ha_address") or "-"),
                     escape(m.get("api") or "-"), escape(m.get("health"))))
    if len(rows) == 1:
        print("no members: no agent of this cluster is running", file=out)
    else:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1], file=out)
    for problem in view.get("problems", []):
        print("warning: %s" % escape(problem), file=out)


# ---------------------------------------------------------------- agent run


def run_config(args: Any, environ: Optional[Mapping[str, str]] = None) -> Any:
    """The AgentConfig of ``agent run``: the file, the environment, the options."""
    from .agent.config import load_config

    env = os.environ if environ is None else environ
    overrides = _environment(env)
    overrides.update(_options(args, _RUN_OPTIONS))
    if args.timeout is not None:
        overrides["etcd_timeout"] = args.timeout
    return load_config(getattr(args, "config", None), overrides, environ=env)


def run_agent(args: Any, ctx: Context, out: Any, err: Any) -> int:
    """``confd-ha agent run``: until SIGTERM/SIGINT (exit 0) or an AgentError (exit 1)."""
    from .cli_signals import Signals

    config = run_config(args)
    ctx.target = ", ".join(config.etcd)
    signals = Signals()
    with signals.installed(), _agent_log(args, err):
        return asyncio.run(_serve(config, args, out, signals))


@contextlib.contextmanager
def _agent_log(args: Any, err: Any) -> Iterator[None]:
    """The package's log on stderr, one line per record with its local time: info by
    default, -q warnings, -v or --debug everything."""
    level = (logging.DEBUG if args.verbose or args.debug else
             logging.WARNING if args.quiet else logging.INFO)
    with stderr_log(err, level, logging.Formatter(
            "%(asctime)s.%(msecs)03d %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")):
        yield


def ready_object(config: Any, api: str) -> Dict[str, Any]:
    return {"ready": True, "node": config.node_id, "cluster": config.cluster, "api": api,
            "etcd": list(config.etcd), "pid": os.getpid()}


def ready_line(config: Any, api: str) -> str:
    return "ready node=%s cluster=%s api=%s etcd=%s pid=%d" % (
        escape(config.node_id), config.cluster, api, ",".join(config.etcd), os.getpid())


async def _serve(config: Any, args: Any, out: Any, signals: Any) -> int:
    from .agent.core import Agent
    from .agent.etcd import EtcdClient
    from .agent.health import AgentHealthView, HealthServer
    from .agent.keys import Keys

    stop = asyncio.Event()

    def on_signal(name: str) -> None:
        if stop.is_set():
            log.warning("%s again: still stopping (a leader demotes its node first)", name)
        else:
            log.info("%s: stopping", name)
        stop.set()

    signals.attach(asyncio.get_running_loop(), on_signal)
    agent = Agent(config)
    server = HealthServer(AgentHealthView(agent), config.api_address, config.api_port)
    running = False
    try:
        try:
            await server.start()
        except OSError as exc:
            there = hostport(config.api_address, config.api_port)
            raise CliError("cannot listen on %s for the health endpoint: %s (api_port, "
                           "--api-port)" % (there, exc.strerror or exc), EXIT_UNREACHABLE,
                           "unreachable", there) from None
        agent.api_url = server.url
        async with EtcdClient(config.etcd, timeout=max(PROBE_TIMEOUT, config.etcd_deadline)
                              ) as probe:
            await probe.get(Keys(config.cluster).leader)   # etcd answers: or exit 3
        if stop.is_set():
            return EXIT_OK
        print(dumps(ready_object(config, server.url)) if args.json
              else ready_line(config, server.url), file=out, flush=True)
        running = True
        run = asyncio.ensure_future(agent.run())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            await agent.stop()   # bounded: the agent's own order and etcd deadlines
        stopped.cancel()
        await asyncio.gather(stopped, return_exceptions=True)
        run.result()             # AgentError: exit 1, with its reason
        return EXIT_OK
    finally:
        signals.detach()
        await server.close()
        if not running:
            await agent.etcd.close()
