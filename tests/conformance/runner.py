"""Run one scenario on one target and return its transcript lines."""

from __future__ import annotations

import traceback

from .scenarios import Scenario
from .targets import Target
from .world import World


def run(sc: Scenario, target: Target, base_ip: str) -> list:
    world = World(target, sc.nodes, sc.tick, base_ip, quirks=sc.quirks,
                  access_secret=sc.access_secret)
    try:
        world.start(phase0=sc.phase0)
        world.settle()
        sc.fn(world)
        world.settle()
    except Exception:
        world.log("HARNESS FAILURE: " + traceback.format_exc().strip().splitlines()[-1])
        raise
    finally:
        world.close()
        target.stop_all()
    return world.lines
