"""The agent's configuration and key layout (no etcd, no nodes needed)."""

from __future__ import annotations

import pytest

from confd_ha.agent import keys as K
from confd_ha.agent.config import TOKEN_ENV, AgentConfig, ConfigError, load_config

SECRET = "s3cret-token-value"


def write(tmp_path, text, name="agent.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_load_config_from_toml_with_overrides(tmp_path):
    token = write(tmp_path, SECRET + "\n", "token")
    path = write(tmp_path, """
cluster = "main"
node_id = "n1"
flavour = "nso"
ipc_address = "127.0.0.5"
token_file = "%s"
etcd = ["http://127.0.0.1:2379", "http://127.0.0.2:2379"]
ttl = 10
""" % token)
    c = load_config(path, {"node_id": "n2", "loop_wait": "1.5", "api_port": None}, environ={})
    assert (c.cluster, c.node_id, c.port, c.ha_ip) == ("main", "n2", 4569, "127.0.0.5")
    assert c.token == SECRET                      # one trailing newline removed
    assert c.wait == 1.5 and c.margin == 2.5 and c.etcd_deadline == 1.0
    assert c.api_address == "127.0.0.1" and c.api_port == 8008
    assert SECRET not in repr(c) and SECRET not in str(c.to_dict())


def test_token_from_the_environment():
    c = load_config(None, {"cluster": "c", "node_id": "n1"}, environ={TOKEN_ENV: SECRET})
    assert c.token == SECRET and c.port == 4565 and c.wait == 2.0


def test_every_problem_is_reported_once(tmp_path):
    path = write(tmp_path, """
cluster = "bad/name"
node_id = ""
token = "in-the-file"
ttl = 2
loop_wait = 0.5
order_timeout = 1
ipc_port = 70000
etcd = ["127.0.0.1:2379"]
colour = "blue"
""")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    text = str(info.value)
    problems = info.value.problems
    assert "the HA token is not a setting" in text and "in-the-file" not in text
    assert any("unknown setting 'colour'" in p for p in problems)
    assert "cluster must consist of letters, digits" in text
    assert "node_id must be set" in text
    assert "ipc_port must be an integer 1..65535" in text
    assert any(p.startswith("etcd endpoint '127.0.0.1:2379'") for p in problems)
    assert any(p.startswith("ttl must be > 2 * loop_wait + order_timeout") for p in problems)
    assert "no HA token" in text
    assert len(problems) == len(set(problems))


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_config(str(tmp_path / "none.toml"), environ={})
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(write(tmp_path, "cluster = ="), environ={})


def test_validate_timings():
    ok = AgentConfig(cluster="c", node_id="n", token="t", ttl=2, loop_wait=0.25,
                     order_timeout=0.5)
    assert ok.validate() is ok
    with pytest.raises(ConfigError, match="loop_wait must be at most ttl / 3"):
        AgentConfig(cluster="c", node_id="n", token="t", ttl=3, loop_wait=1.5,
                    order_timeout=0.1).validate()
    with pytest.raises(ConfigError, match="ttl must be an integer number of seconds >= 2"):
        AgentConfig(cluster="c", node_id="n", token="t", ttl=1).validate()
    # ttl 2 with the default loop_wait (0.4 s) and order_timeout (1 s): the fence rule holds
    # (2 > 1.8) but a promotion needs 1 s + margin 1.4 s of lease left, more than 2 s: nobody
    # would ever be elected. Refused, saying why.
    with pytest.raises(ConfigError, match=r"ttl must be > loop_wait \+ 2 \* order_timeout, "
                                          r"or a leader can never promote its node"):
        AgentConfig(cluster="c", node_id="n", token="t", ttl=2).validate()
    for ttl in (3, 4, 10, 30):   # the defaults from ttl 3 on
        AgentConfig(cluster="c", node_id="n", token="t", ttl=ttl).validate()


def test_keys_percent_encode_node_ids():
    keys = K.Keys("main")
    assert keys.leader == "/confd-ha/main/leader"
    assert keys.member("a/b c") == "/confd-ha/main/members/a%2Fb%20c"
    assert keys.member_node(keys.member("a/b c")) == "a/b c"
    assert keys.member_node(keys.leader) is None


class _KV:
    def __init__(self, key, value, rev, lease=0):
        self.key, self.value, self.mod_revision, self.lease = key, value, rev, lease


def test_snapshot_parses_records_and_reports_bad_ones():
    keys = K.Keys("c")
    member = K.MemberRecord(node="n/1", ha_address="10.0.0.1", state="primary",
                            connected=["n2"], lease=7)
    request = K.RequestRecord(kind="switchover", from_node="n/1", to="n2", id="x")
    snap = K.Snapshot.parse(keys, 42, [
        _KV(keys.leader, K.LeaderRecord("n/1", "10.0.0.1").to_json(), 40, 7),
        _KV(keys.member("n/1"), member.to_json(), 41, 7),
        _KV(keys.member("n2"), b"not json", 41, 8),
        _KV(keys.pause, K.PauseRecord().to_json(), 30),
        _KV(keys.request, request.to_json(), 39, 9),
    ])
    assert snap.revision == 42 and snap.leader.node == "n/1" and snap.leader_lease == 7
    assert snap.members["n/1"].same_content(member) and snap.member_revs["n/1"] == 41
    assert snap.paused and snap.request.to == "n2" and snap.request.from_node == "n/1"
    assert len(snap.problems) == 1 and "members/n2" in snap.problems[0]
    assert K.RequestRecord.from_json(request.to_json()).to_dict()["from"] == "n/1"


def test_within_never_loses_a_cancellation():
    """``_timeout.within``: a deadline like ``asyncio.wait_for``, but the caller's cancellation
    goes through even when the awaited task finishes in the same loop iteration (wait_for
    before Python 3.12 returned the result then, and the caller went on)."""
    import asyncio

    from confd_ha.agent._timeout import within

    async def main():
        loop = asyncio.get_running_loop()
        # 1. the race: the inner result arrives and the caller is cancelled at once
        fut = loop.create_future()
        discarded = []
        caller = asyncio.ensure_future(within(fut, 10, discard=discarded.append))
        await asyncio.sleep(0)          # the caller now waits for the inner task
        await asyncio.sleep(0)
        fut.set_result("opened")        # the inner task completes ...
        caller.cancel()                 # ... as the caller is cancelled
        await asyncio.wait({caller}, timeout=5)
        assert caller.cancelled()
        await asyncio.sleep(0)
        assert discarded == ["opened"]  # what it opened for nobody is handed to discard
        # 2. the deadline: the inner task is cancelled and has ended when TimeoutError comes
        ended = []

        async def slow():
            try:
                await asyncio.sleep(10)
            finally:
                ended.append(True)
        with pytest.raises(asyncio.TimeoutError):
            await within(slow(), 0.05)
        assert ended == [True]
        # 3. a result or an error within the deadline is passed through
        assert await within(asyncio.sleep(0, "x"), 1) == "x"
        with pytest.raises(KeyError):
            await within(_raise(KeyError("k")), 1)

    async def _raise(exc):
        raise exc

    asyncio.run(main())
