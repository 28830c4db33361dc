"""MLDv2 listener (RFC 3810): reports for the groups we join, so switches deliver them.

Joining a group (a solicited-node group for each address, or one an
application asks for) sends an unsolicited report ``mld_unsolicited_reports``
times, ``mld_report_interval`` apart (RFC 3810 §6.1); leaving sends one that
moves the group to INCLUDE {} (§6.1). A query from a router is answered with
the current state of every group (§6.2). ff02::1 is never reported (§6).
Reports go to ff02::16 with hop limit 1 and a router alert (§5.2.13, §5).
"""

from __future__ import annotations

from functools import partial
from ipaddress import IPv6Address

from ..errors import DropReason, ParseError
from ..stats import Stats
from ..time import Instant
from ..timers import TimerHandle, TimerHeap
from ..wire import icmpv6 as wire
from ..wire.icmpv6 import Icmpv6Message, MldQuery, Mldv2Report, MulticastRecord
from ..wire.ipv6 import NEXT_ICMPV6, Ipv6Packet
from .addresses import ALL_MLDV2_ROUTERS, ALL_NODES, UNSPECIFIED, is_link_local6
from .output import Ipv6Output, Link6

ROUTER_ALERT_MLD = bytes([5, 2, 0, 0])
"""The hop-by-hop router alert option, value 0: MLD (RFC 2711 §2.1)."""


class Mld:
    """Multicast listener state per link: the groups and their pending reports."""

    def __init__(self, output: Ipv6Output, *, timers: TimerHeap, stats: Stats) -> None:
        self._out = output
        self._config = output.config
        self._timers = timers
        self._stats = stats
        self._pending: dict[str, dict[IPv6Address, int]] = {}
        self._timers_by_link: dict[str, TimerHandle] = {}

    def join(self, link: Link6, group: IPv6Address, now: Instant) -> None:
        if self._out.join(link, group) and _reported(group):
            self._schedule(link, group, now)

    def leave(self, link: Link6, group: IPv6Address, now: Instant) -> None:
        if self._out.leave(link, group) and _reported(group):
            self._pending.get(link.name, {}).pop(group, None)
            self._send(link, [MulticastRecord(wire.MLD_CHANGE_TO_INCLUDE, group)])

    def link_local_ready(self, link: Link6, now: Instant) -> None:
        """Reports sent from :: before the link-local address was ready go again from it."""
        for group in link.groups:
            if _reported(group):
                self._schedule(link, group, now)

    def _schedule(self, link: Link6, group: IPv6Address, now: Instant) -> None:
        count = self._config.mld_unsolicited_reports
        if count <= 0:
            return
        self._pending.setdefault(link.name, {})[group] = count
        timer = self._timers_by_link.get(link.name)
        if timer is None:
            timer = self._timers.new_timer(partial(self._due, link.name))
            self._timers_by_link[link.name] = timer
        if timer.deadline is None or timer.deadline > now:
            self._timers.arm(timer, now)

    def _due(self, name: str, now: Instant) -> None:
        link = self._out.links.get(name)
        pending = self._pending.get(name)
        if link is None or not pending:
            return
        groups = [g for g in pending if g in link.groups]
        if groups:
            self._send(link, [MulticastRecord(wire.MLD_CHANGE_TO_EXCLUDE, g) for g in groups])
        for group in list(pending):
            pending[group] -= 1
            if pending[group] <= 0 or group not in link.groups:
                del pending[group]
        if pending:
            self._timers.arm(self._timers_by_link[name], now + self._config.mld_report_interval)

    def _send(self, link: Link6, records: list[MulticastRecord]) -> None:
        source = self._out.link_local_of(link) or UNSPECIFIED
        body = Mldv2Report(records).to_message().build(source, ALL_MLDV2_ROUTERS)
        self._stats.count("mld.reports_out")
        self._out.send(
            source,
            ALL_MLDV2_ROUTERS,
            NEXT_ICMPV6,
            body,
            now=0,
            interface=link.name,
            hop_limit=1,
            hop_by_hop=ROUTER_ALERT_MLD,
        )

    def received(
        self, link: Link6, packet: Ipv6Packet, message: Icmpv6Message, now: Instant
    ) -> None:
        """A query (answered) or another listener's report (nothing to do)."""
        if message.icmp_type != wire.TYPE_MLD_QUERY:
            self._stats.count("mld.reports_in")
            return
        if not is_link_local6(packet.source) or packet.hop_limit != 1:
            self._stats.drop(DropReason.MLD_INVALID)  # RFC 3810 §5.1.14
            return
        try:
            query = MldQuery.from_message(message)
        except ParseError as error:
            self._stats.drop(error.reason)
            return
        self._stats.count("mld.queries_in")
        groups = [
            g
            for g in link.groups
            if _reported(g) and (query.multicast == UNSPECIFIED or g == query.multicast)
        ]
        if groups:
            self._send(link, [MulticastRecord(wire.MLD_MODE_IS_EXCLUDE, g) for g in groups])


def _reported(group: IPv6Address) -> bool:
    """RFC 3810 §6: never for the all-nodes group or interface-local scope."""
    return group != ALL_NODES and group.packed[1] & 0x0F > 1


__all__ = ["Mld", "ROUTER_ALERT_MLD"]
