"""Fixtures shared by the agent's tests."""

from __future__ import annotations

import os

import pytest

from confd_ha.testing.etcd import EtcdCluster, EtcdNotFound, find_etcd


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


@pytest.fixture(scope="module")
def etcd(request, etcd_binary):
    """A 3-member etcd cluster for the test module, on ``<ETCD_PREFIX>1``..``3`` where
    ``ETCD_PREFIX`` is the module's own (modules never share addresses)."""
    with EtcdCluster(3, prefix=request.module.ETCD_PREFIX) as cluster:
        yield cluster
