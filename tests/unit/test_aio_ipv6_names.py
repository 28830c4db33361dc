"""getaddrinfo and friends over both families, as the socket module answers them."""

from __future__ import annotations

import asyncio
import socket

import pytest

from simtcp.aio.network import Network, literal, sockaddr
from simtcp.backends.aio_sim import SimNetwork


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("2001:DB8:0::1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ("10.0.0.1", "10.0.0.1"),
        ("db", None),
        ("1.2.3", None),
    ],
)
def test_literals(text: str, normal: str | None) -> None:
    assert literal(text) == normal


def test_sockaddr_is_a_4_tuple_for_ipv6() -> None:
    assert sockaddr("2001:db8::1", 80) == ("2001:db8::1", 80, 0, 0)
    assert sockaddr("fe80::1%eth0", 80) == ("fe80::1", 80, 0, 0)
    assert sockaddr("10.0.0.1", 80) == ("10.0.0.1", 80)


def test_dual_stack_names_resolve_to_both_families_ipv4_first() -> None:
    net = Network()
    net.add_names({"web": ["2001:db8::6", "10.0.0.6"], "six": "2001:db8::7"})
    assert net.resolve_all("web", passive=False) == ["10.0.0.6", "2001:db8::6"]
    assert net.resolve_all("web", passive=False, family=socket.AF_INET6) == ["2001:db8::6"]
    assert net.resolve("six", passive=False) == "2001:db8::7"
    assert net.resolve_all("localhost", passive=False) == ["127.0.0.1", "::1"]
    assert Network(prefer_ipv6=True).resolve_all("localhost", passive=False) == [
        "::1",
        "127.0.0.1",
    ]
    with pytest.raises(socket.gaierror) as error:
        net.resolve_all("six", passive=False, family=socket.AF_INET)
    assert error.value.errno == socket.EAI_ADDRFAMILY
    with pytest.raises(ValueError):
        net.add_names({"bad": "not-an-address"})
    assert net.reverse("2001:db8::7") == "six"


def test_getaddrinfo_gives_af_inet6_results_like_the_socket_module() -> None:
    net = SimNetwork(1)
    net.add_host("a")
    net.add_names({"web": ["10.0.0.6", "2001:db8::6"]})

    async def main() -> None:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo("web", 80, type=socket.SOCK_STREAM)
        assert [(family, address) for family, _, _, _, address in infos] == [
            (socket.AF_INET, ("10.0.0.6", 80)),
            (socket.AF_INET6, ("2001:db8::6", 80, 0, 0)),
        ]
        six = await loop.getaddrinfo("[::1]", "80", family=socket.AF_INET6)
        assert {info[4] for info in six} == {("::1", 80, 0, 0)}
        assert {info[1] for info in six} == {socket.SOCK_STREAM, socket.SOCK_DGRAM}
        passive = await loop.getaddrinfo(
            None, 0, family=socket.AF_INET6, flags=socket.AI_PASSIVE, type=socket.SOCK_STREAM
        )
        assert [info[4] for info in passive] == [("::", 0, 0, 0)]
        with pytest.raises(socket.gaierror):
            await loop.getaddrinfo("10.0.0.6", 80, family=socket.AF_INET6)
        assert await loop.getnameinfo(("2001:db8::6", 80, 0, 0)) == ("web", "80")

    net.run(main())
