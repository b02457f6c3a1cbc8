"""Fixtures shared by the agent's tests."""

from __future__ import annotations

import os

import pytest

from confd_ha.testing.etcd import EtcdNotFound, find_etcd


@pytest.fixture(scope="session")
def etcd_binary() -> str:
    """The etcd executable. Without one the test is skipped, saying how to install it --
    unless ``CI`` is set: there etcd is required and its absence is a failure."""
    try:
        return find_etcd()
    except EtcdNotFound as e:
        if os.environ.get("CI"):
            pytest.fail("%s (CI is set: etcd is required there)" % e)
        pytest.skip("%s (or set ETCD=/path/to/etcd)" % e)
