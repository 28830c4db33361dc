"""A blind attacker who knows the 4-tuple but not the sequence numbers cannot break a transfer.

Random RST, SYN and data segments with random sequence and acknowledgement
numbers are injected toward the receiver during a transfer (RFC 5961's threat
model); the connection survives and the bytes arrive intact.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.events import ConnectionAccepted
from simtcp.tcp import TcpConfig
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import ACK, FIN, RST, SYN, TcpSegment
from tests.unit.tcp.harness import A_ADDR, B_ADDR, make_pair


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), attacks=st.integers(10, 400))
def test_blind_injection_does_not_break_the_connection(seed: int, attacks: int) -> None:
    rng = random.Random(seed)
    config = TcpConfig(msl=1 * SECOND)
    pair = make_pair(config, config, seed=seed)
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    server = next(e.connection for e in pair.b.host.events if isinstance(e, ConnectionAccepted))
    client_port = pair.a.layer.info(client).local_port
    data = rng.randbytes(200_000)
    sent = pair.a.layer.send(client, data, now=pair.now)
    received = bytearray()
    budget = [attacks]

    def attack() -> None:
        received.extend(pair.b.layer.receive(server, now=pair.now))
        if budget[0] <= 0:
            return
        budget[0] -= 1
        flags = rng.choice([RST, RST | ACK, SYN, ACK, ACK | FIN])
        payload = rng.randbytes(rng.randrange(0, 100)) if not flags & (RST | SYN) else b""
        forged = TcpSegment(
            client_port,
            80,
            rng.getrandbits(32),
            rng.getrandbits(32),
            flags,
            rng.randrange(65536),
            (),
            payload,
        )
        pair.b.receive(forged, source=A_ADDR, now=pair.now)

    pair.run(pair.now + 20 * SECOND, on_step=attack, stop=lambda: len(received) >= sent)
    assert bytes(received) == data[:sent]
    assert pair.b.layer.info(server).state == "ESTABLISHED"
    assert pair.a.layer.info(client).state == "ESTABLISHED"
