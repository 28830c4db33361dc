"""A learning Ethernet switch for the simulator (``backends/sim.py`` wires its ports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sim import _Direction


class Switch:
    """A learning Ethernet switch: unknown, broadcast and multicast destinations are flooded."""

    __slots__ = ("name", "ports", "_table", "table_limit", "counters", "_flood", "_flood_ports")

    def __init__(self, name: str, *, table_limit: int = 4096) -> None:
        self.name = name
        self.ports: list[_Direction] = []  # egress direction of each port, by port index
        self._table: dict[bytes, int] = {}
        self.table_limit = table_limit
        self.counters = {"forwarded": 0, "flooded": 0, "filtered": 0, "runts": 0}
        self._flood: list[list[_Direction]] = []  # by ingress port: every other port
        self._flood_ports = 0  # len(ports) when _flood was built

    def _flood_from(self, index: int) -> list[_Direction]:
        ports = self.ports
        if self._flood_ports != len(ports):
            self._flood = [
                [port for number, port in enumerate(ports) if number != ingress]
                for ingress in range(len(ports))
            ]
            self._flood_ports = len(ports)
        return self._flood[index]

    def egress(self, index: int, frame: bytes) -> list[_Direction]:
        """Learn the sender's MAC on port ``index``; the ports ``frame`` goes out of (a list
        the switch keeps: read it, do not change it)."""
        if len(frame) < 14:
            self.counters["runts"] += 1
            return []
        table = self._table
        source = frame[6:12]
        if not source[0] & 1:  # never learn a group address
            if source not in table and len(table) >= self.table_limit:
                del table[next(iter(table))]  # evict the oldest entry
            table[source] = index
        destination = frame[0:6]
        out = None if destination[0] & 1 else table.get(destination)
        if out is None:
            self.counters["flooded"] += 1
            return self._flood_from(index)
        if out == index:
            self.counters["filtered"] += 1
            return []
        self.counters["forwarded"] += 1
        return [self.ports[out]]
