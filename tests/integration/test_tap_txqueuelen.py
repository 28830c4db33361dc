"""A TAP device is created with the kernel-side queue length asked for (default TXQUEUELEN)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from simtcp.backends import tapdevice
from simtcp.backends.tapsetup import netlink
from tests.integration.conftest import unique_name

pytestmark = pytest.mark.timeout(60)


def txqueuelen_of(name: str, namespace: str) -> int:
    with netlink(namespace) as ipr:
        [link] = ipr.get_links(ipr.link_lookup(ifname=name)[0])
        return int(link.get_attr("IFLA_TXQLEN"))


@pytest.mark.parametrize("asked", [None, 700])
def test_a_device_gets_the_queue_length_asked_for(
    make_netns: Callable[[], str], asked: int | None
) -> None:
    namespace = make_netns()
    name = unique_name("stq")
    extra = {} if asked is None else {"txqueuelen": asked}
    device = tapdevice.TapDevice.create(name, interface="eth0", namespace=namespace, **extra)
    try:
        assert txqueuelen_of(name, namespace) == (asked or tapdevice.TXQUEUELEN)
    finally:
        device.close()
    assert not device.exists()
