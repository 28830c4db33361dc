"""ICMP errors (RFC 1122 §4.2.3.9, RFC 5927, RFC 1191) and API misuse."""

from __future__ import annotations

import pytest

from simtcp.errors import (
    AddressError,
    AddressInUseError,
    ConfigError,
    InvalidHandleError,
    InvalidStateError,
    NoRouteError,
)
from simtcp.events import ConnectionClosed, ConnectionFailed
from simtcp.tcp import TcpConfig, TcpLayer
from simtcp.time import SECOND
from simtcp.wire.tcp import ACK

from .harness import A_ADDR, B_ADDR, Endpoint, FakeHost
from .scenario import PEER, PEER_PORT, PORT, Scenario


def icmp(scenario: Scenario, icmp_type: int, code: int, quoted_seq: int, mtu: int = 0) -> None:
    scenario.layer.icmp_error_received(
        icmp_type=icmp_type,
        code=code,
        next_hop_mtu=mtu,
        quoted_source=B_ADDR,
        quoted_destination=PEER,
        quoted_source_port=PORT,
        quoted_destination_port=PEER_PORT,
        quoted_seq=quoted_seq,
        now=scenario.now,
    )


def test_port_unreachable_fails_a_connecting_socket() -> None:
    scenario = Scenario()
    scenario.enter("SYN-SENT")
    icmp(scenario, 3, 3, scenario.our_iss)
    assert scenario.events() == [
        ConnectionFailed(connection=scenario.handle or 0, icmp_type=3, code=3),
        ConnectionClosed(connection=1),
    ]
    assert scenario.layer.connection_count() == 0


def test_icmp_quoting_a_sequence_not_in_flight_is_ignored() -> None:
    scenario = Scenario()
    scenario.enter("SYN-SENT")
    icmp(scenario, 3, 3, scenario.our_iss + 12345)  # RFC 5927 §4.1: a blind attack
    assert scenario.events() == []
    assert scenario.state() == "SYN-SENT"
    assert scenario.host.stats["tcp.icmp_ignored"] == 1


def test_net_unreachable_is_soft_while_connecting() -> None:
    scenario = Scenario()
    scenario.enter("SYN-SENT")
    icmp(scenario, 3, 1, scenario.our_iss)  # host unreachable: soft (RFC 1122 §4.2.3.9)
    assert scenario.events() == [] and scenario.state() == "SYN-SENT"
    assert scenario.host.stats["tcp.icmp_soft_errors"] == 1


def test_hard_error_on_an_established_connection_is_soft() -> None:
    scenario = Scenario()
    scenario.enter("ESTABLISHED")
    scenario.layer.send(scenario.handle or 0, b"data", now=scenario.now)
    sent = scenario.sent()
    icmp(scenario, 3, 3, sent[0].seq)
    assert scenario.state() == "ESTABLISHED"  # RFC 5461: data may still get through


def test_fragmentation_needed_shrinks_the_mss_and_resends() -> None:
    scenario = Scenario()
    scenario.enter("ESTABLISHED")
    handle = scenario.handle or 0
    scenario.layer.send(handle, b"x" * 3000, now=scenario.now)
    first = scenario.sent()
    assert [len(s.payload) for s in first] == [1460, 1460, 80]
    icmp(scenario, 3, 4, first[0].seq, mtu=1000)
    assert scenario.layer.info(handle).mss == 960
    resent = scenario.sent()
    assert resent and len(resent[0].payload) == 960 and resent[0].seq == first[0].seq


def make_layer(**config: object) -> tuple[TcpLayer, FakeHost]:
    endpoint = Endpoint(A_ADDR, TcpConfig(**config))  # type: ignore[arg-type]
    return endpoint.layer, endpoint.host


def test_api_misuse_raises_the_documented_errors() -> None:
    layer, host = make_layer()
    with pytest.raises(InvalidHandleError):
        layer.send(99, b"x", now=0)
    with pytest.raises(AddressError):
        layer.listen(0)
    with pytest.raises(AddressError):
        layer.listen(80, address=0x01020304)  # not ours
    listener = layer.listen(80)
    with pytest.raises(AddressInUseError):
        layer.listen(80, address=A_ADDR)
    with pytest.raises(InvalidStateError):
        layer.send(listener, b"x", now=0)
    handle = layer.connect(B_ADDR, 80, local_port=4000, now=0)
    with pytest.raises(AddressInUseError):
        layer.connect(B_ADDR, 80, local_port=4000, now=0)
    layer.shutdown(handle, now=0)
    with pytest.raises(InvalidStateError):
        layer.send(handle, b"late", now=0)
    layer.abort(handle, now=0)
    with pytest.raises(InvalidHandleError):
        layer.info(handle)
    host.routable = False
    with pytest.raises(NoRouteError):
        layer.connect(B_ADDR, 80, now=0)
    with pytest.raises(ConfigError):
        make_layer(congestion_control="vegas")


def test_send_buffer_is_bounded() -> None:
    scenario = Scenario(config=TcpConfig(send_buffer=4096, send_buffer_max=0))
    scenario.enter("ESTABLISHED")
    handle = scenario.handle or 0
    assert scenario.layer.send(handle, b"x" * 10_000, now=scenario.now) == 4096
    assert scenario.layer.send(handle, b"y", now=scenario.now) == 0
    assert scenario.layer.info(handle).bytes_in_send_buffer == 4096


def test_closing_a_listener_resets_half_open_connections() -> None:
    scenario = Scenario()
    scenario.enter("SYN-RECEIVED")
    scenario.layer.close(scenario.listener or 0, now=scenario.now)
    assert [s.flags for s in scenario.sent()] == [0x04]
    assert scenario.layer.connection_count() == 0
    replies = scenario.send(ACK)  # the port is closed now
    assert [s.flags for s in replies] == [0x04]


def test_cubic_by_name_moves_data() -> None:
    from .harness import make_pair

    config = TcpConfig(congestion_control="cubic", msl=1 * SECOND)
    pair = make_pair(config, config)
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(1 * SECOND)
    pair.a.layer.send(client, b"c" * 100_000, now=pair.now)
    pair.run(pair.now + 2 * SECOND)
    assert pair.a.layer.info(client).bytes_in_send_buffer == 0


def test_a_soft_error_is_the_connections_soft_error_and_reported_on_timeout() -> None:
    """RFC 1122 §4.2.3.9: a soft error is made available to the application: in
    ``TcpInfo.soft_error``, read-and-cleared by ``take_soft_error`` (SO_ERROR), and
    on the ``ConnectionTimedOut`` of a connect that then gives up."""
    from simtcp.events import ConnectionTimedOut

    scenario = Scenario(config=TcpConfig(syn_retries=1))
    scenario.enter("SYN-SENT")
    handle = scenario.handle or 0
    icmp(scenario, 11, 0, scenario.our_iss)  # time exceeded: soft
    assert scenario.layer.info(handle).soft_error == (11, 0)
    icmp(scenario, 3, 1, scenario.our_iss)  # host unreachable: soft, the latest wins
    assert scenario.layer.take_soft_error(handle) == (3, 1)
    assert scenario.layer.take_soft_error(handle) is None
    icmp(scenario, 3, 0, scenario.our_iss)  # net unreachable
    scenario.advance(1 * SECOND)
    scenario.advance(3 * SECOND)
    timed_out = [e for e in scenario.events() if isinstance(e, ConnectionTimedOut)]
    assert timed_out == [ConnectionTimedOut(connection=handle, soft_error=(3, 0))]
