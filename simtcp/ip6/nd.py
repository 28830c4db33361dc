"""Neighbor Discovery (RFC 4861) and stateless autoconfiguration with DAD (RFC 4862).

:class:`NeighbourDiscovery` answers and sends NS/NA, sends router
solicitations as a host and answers them as a router, learns routers,
prefixes, the MTU and timers from RAs (or drops them, counted, when it does
not accept them), ignores redirects unless told otherwise, configures
addresses (link-local from EUI-64 or RFC 7217, global ones from advertised
prefixes) and runs duplicate address detection on every one of them.

Every ND message must arrive with hop limit 255 (RFC 4861 §6.1, §7.1, §8.1:
proof that it was not forwarded), code 0 and well-formed options; anything
else is dropped and counted by reason. Multicast listening (MLDv2) is
:mod:`.mld`'s.
"""

from __future__ import annotations

from functools import partial
from ipaddress import IPv6Address

from ..errors import DropReason, ParseError
from ..rng import SeededRandom
from ..stats import Stats
from ..time import SECOND, Instant
from ..timers import TimerHandle, TimerHeap
from ..wire import icmpv6 as wire
from ..wire.icmpv6 import (
    Icmpv6Message,
    NdOptions,
    NeighborAdvertisement,
    NeighborSolicitation,
    PrefixInformation,
    Redirect,
    RouterAdvertisement,
    RouterSolicitation,
)
from ..wire.ipv6 import NEXT_ICMPV6, Ipv6Packet, multicast_mac, solicited_node
from .addresses import (
    ALL_NODES,
    ALL_ROUTERS,
    LINK_LOCAL_PREFIX,
    UNSPECIFIED,
    eui64_interface_id,
    is_link_local6,
    is_multicast6,
    prefix_mask6,
    stable_interface_id,
    with_interface_id,
)
from .mld import Mld
from .output import Address6, AddressState, Ipv6Output, Link6

ND_HOP_LIMIT = 255
TWO_HOURS_S = 2 * 3600
INFINITE = 0xFFFFFFFF
IDGEN_RETRIES = 3
"""RFC 7217 §6: stable addresses tried after a conflict before giving up."""


class NeighbourDiscovery:
    """ND, SLAAC and DAD for every IPv6 link of the stack."""

    def __init__(
        self,
        output: Ipv6Output,
        *,
        timers: TimerHeap,
        stats: Stats,
        rng: SeededRandom,
        mld: Mld,
        forwarding: bool,
    ) -> None:
        self._out = output
        self._config = config = output.config
        self._timers = timers
        self._stats = stats
        self._rng = rng.stream("nd")
        self._secret = rng.keyed_hash32("rfc7217-secret", 0).to_bytes(4, "big") + bytes(
            str(rng.seed), "ascii"
        )
        self._mld = mld
        self._forwarding = forwarding
        self._accept_ra = config.accept_router_advertisements and not forwarding
        self._advertised: dict[str, int] = {}
        """Unsolicited RAs sent per link so far (RFC 4861 §6.2.4)."""
        output.solicit = self.solicit

    # --- addresses ----------------------------------------------------------

    def start(self, link: Link6, now: Instant) -> None:
        """IPv6 starts on ``link``: join all-nodes (and all-routers as a router), form the
        link-local address (RFC 4862 §5.3). Once per link."""
        if link.started:
            return
        link.started = True
        self._mld.join(link, ALL_NODES, now)
        if self._forwarding:
            self._mld.join(link, ALL_ROUTERS, now)
        if self._config.link_local:
            self.configure(link, LINK_LOCAL_PREFIX, 64, now, delay=True)

    def configure(
        self,
        link: Link6,
        prefix: IPv6Address,
        prefix_length: int,
        now: Instant,
        *,
        delay: bool = False,
        valid_s: int = INFINITE,
        preferred_s: int = INFINITE,
    ) -> Address6 | None:
        """An autoconfigured address on ``prefix`` (a /64), tentative until DAD passes."""
        stable = self._config.stable_privacy
        for counter in range(IDGEN_RETRIES + 1):
            identifier = (
                stable_interface_id(self._secret, prefix, link.name, counter)
                if stable
                else eui64_interface_id(link.interface.mac)
            )
            address = with_interface_id(prefix, identifier)
            if address not in self._out.local:
                break
        else:
            return None
        entry = self._out.new_address(link, address, prefix_length, AddressState.TENTATIVE)
        entry.autoconfigured, entry.stable = True, stable
        self._set_lifetimes(entry, valid_s, preferred_s, now)
        self.start_dad(entry, now, delay=delay)
        return entry

    def add_manual(
        self, link: Link6, address: IPv6Address, prefix_length: int, now: Instant
    ) -> None:
        self.start(link, now)
        entry = self._out.new_address(link, address, prefix_length, AddressState.TENTATIVE)
        self.start_dad(entry, now, delay=False)

    def start_dad(self, entry: Address6, now: Instant, *, delay: bool) -> None:
        """RFC 4862 §5.4: join the solicited-node group, then probe with NS from ::."""
        link = self._out.links[entry.interface]
        self._mld.join(link, solicited_node(entry.address), now)
        entry.probes_left = self._config.dad_transmits
        entry.timer.callback = partial(self._dad_step, entry)
        wait = self._rng.randrange(self._config.dad_delay_max + 1) if delay else 0
        self._timers.arm(entry.timer, now + wait)

    def _dad_step(self, entry: Address6, now: Instant) -> None:
        if entry.status is not AddressState.TENTATIVE:
            return
        if entry.probes_left <= 0:
            entry.status = AddressState.PREFERRED
            self._stats.count("nd.dad_completed")
            entry.timer.callback = partial(self._lifetime_step, entry)
            self._arm_lifetime(entry)
            self._address_ready(entry, now)
            return
        entry.probes_left -= 1
        link = self._out.links[entry.interface]
        self._stats.count("nd.dad_probes_out")
        message = NeighborSolicitation(entry.address).to_message()
        self._emit(link, UNSPECIFIED, solicited_node(entry.address), message, None)
        self._timers.arm(entry.timer, now + self._out.neighbours.retrans_timer)

    def _address_ready(self, entry: Address6, now: Instant) -> None:
        link = self._out.links[entry.interface]
        if is_link_local6(entry.address):
            self._mld.link_local_ready(link, now)
            if self._accept_ra and self._config.router_solicitations > 0:
                self._solicit_router(link, self._config.router_solicitations, now)
            if self._forwarding and link.name not in self._advertised:
                self._advertised[link.name] = 0
                timer = self._timers.new_timer(lambda at: None)
                timer.callback = partial(self._advertise_due, link, timer)
                self._timers.arm(timer, now)

    def duplicate_detected(self, entry: Address6, now: Instant) -> None:
        """RFC 4862 §5.4.5: the address is another node's; RFC 7217 §6 tries again."""
        self._stats.count("nd.dad_conflicts")
        link = self._out.links[entry.interface]
        entry.status = AddressState.DUPLICATE
        self._timers.cancel(entry.timer)
        self._mld.leave(link, solicited_node(entry.address), now)
        if entry.stable and entry.dad_counter < IDGEN_RETRIES:
            prefix = IPv6Address(int(entry.address) & prefix_mask6(64))
            self._out.remove_address(entry)
            counter = entry.dad_counter + 1
            address = with_interface_id(
                prefix, stable_interface_id(self._secret, prefix, link.name, counter)
            )
            if address in self._out.local:
                return
            fresh = self._out.new_address(
                link, address, entry.prefix_length, AddressState.TENTATIVE
            )
            fresh.autoconfigured, fresh.stable, fresh.dad_counter = True, True, counter
            fresh.valid_until, fresh.preferred_until = entry.valid_until, entry.preferred_until
            self.start_dad(fresh, now, delay=False)

    def _set_lifetimes(self, entry: Address6, valid_s: int, preferred_s: int, now: Instant) -> None:
        entry.valid_until = None if valid_s == INFINITE else now + valid_s * SECOND
        entry.preferred_until = None if preferred_s == INFINITE else now + preferred_s * SECOND

    def _arm_lifetime(self, entry: Address6) -> None:
        deadlines = [t for t in (entry.preferred_until, entry.valid_until) if t is not None]
        if entry.status is AddressState.DEPRECATED:
            deadlines = [entry.valid_until] if entry.valid_until is not None else []
        self._timers.arm(entry.timer, min(deadlines) if deadlines else None)

    def _lifetime_step(self, entry: Address6, now: Instant) -> None:
        """RFC 4862 §5.5.4: deprecated at the preferred lifetime, gone at the valid one."""
        if entry.valid_until is not None and now >= entry.valid_until:
            link = self._out.links[entry.interface]
            self._mld.leave(link, solicited_node(entry.address), now)
            self._out.remove_address(entry)
            self._stats.count("nd.address_expired")
            return
        if entry.preferred_until is not None and now >= entry.preferred_until:
            entry.status = AddressState.DEPRECATED
        self._arm_lifetime(entry)

    # --- sending ------------------------------------------------------------

    def _emit(
        self,
        link: Link6,
        source: IPv6Address,
        destination: IPv6Address,
        message: Icmpv6Message,
        mac: bytes | None,
    ) -> None:
        """One ND message with hop limit 255 straight onto the link (multicast, or ``mac``)."""
        body = message.build(source, destination)
        packet = Ipv6Packet(source, destination, NEXT_ICMPV6, body, ND_HOP_LIMIT)
        self._stats.count(f"icmp6.out.type{message.icmp_type}")
        self._out.transmit(link.name, mac or multicast_mac(destination), packet.build())

    def _send_unicast(
        self,
        link: Link6,
        source: IPv6Address,
        destination: IPv6Address,
        message: Icmpv6Message,
        now: Instant,
    ) -> None:
        self._stats.count(f"icmp6.out.type{message.icmp_type}")
        self._out.send(
            source,
            destination,
            NEXT_ICMPV6,
            message.build(source, destination),
            now=now,
            interface=link.name,
            hop_limit=ND_HOP_LIMIT,
        )

    def solicit(self, interface: str, target: IPv6Address, mac: bytes | None, now: Instant) -> None:
        """The neighbour cache's NS: multicast to the solicited-node group, or a unicast probe."""
        link = self._out.links.get(interface)
        if link is None:
            return
        source = self._out.select_source(target, link)
        if source is None:
            self._stats.count("nd.solicit_without_source")
            return
        options = NdOptions(source_lladdr=link.interface.mac)
        message = NeighborSolicitation(target, options).to_message()
        self._stats.count("nd.ns_out")
        if mac is None:
            self._emit(link, source, solicited_node(target), message, None)
        else:
            self._emit(link, source, target, message, mac)

    def _solicit_router(self, link: Link6, remaining: int, now: Instant) -> None:
        source = self._out.link_local_of(link) or UNSPECIFIED
        options = NdOptions(source_lladdr=link.interface.mac if source != UNSPECIFIED else None)
        self._stats.count("nd.rs_out")
        self._emit(link, source, ALL_ROUTERS, RouterSolicitation(options).to_message(), None)
        if remaining > 1:
            timer = self._timers.new_timer(lambda at: None)
            timer.callback = partial(self._rs_again, link, remaining - 1, timer)
            self._timers.arm(timer, now + self._config.router_solicitation_interval)

    def _rs_again(self, link: Link6, remaining: int, timer: object, now: Instant) -> None:
        if link.default_routers:
            return  # RFC 4861 §6.3.7: stop once an RA arrived
        self._solicit_router(link, remaining, now)

    def _advertise_due(self, link: Link6, timer: TimerHandle, now: Instant) -> None:
        """Unsolicited RAs: MAX_INITIAL_RTR_ADVERTISEMENTS (3) at most 16 s apart, then
        uniformly between MinRtrAdvInterval (a third) and MaxRtrAdvInterval (§6.2.4)."""
        self._advertise(link, now)
        sent = self._advertised[link.name] = self._advertised[link.name] + 1
        most = self._config.router_advertisement_interval
        if sent < 3:
            wait = min(16 * SECOND, most)
        else:
            wait = most // 3 + self._rng.randrange(most - most // 3 + 1)
        self._timers.arm(timer, now + wait)

    def _advertise(self, link: Link6, now: Instant) -> None:
        """A router's RA (RFC 4861 §6.2.3) with our /64 prefixes, to all nodes."""
        source = self._out.link_local_of(link)
        if source is None:
            return
        prefixes = [
            PrefixInformation(IPv6Address(int(e.address) & prefix_mask6(64)), 64)
            for e in link.addresses
            if e.prefix_length == 64 and not is_link_local6(e.address) and not e.autoconfigured
        ]
        options = NdOptions(source_lladdr=link.interface.mac, mtu=link.mtu, prefixes=prefixes)
        advert = RouterAdvertisement(
            cur_hop_limit=self._out.hop_limit,
            router_lifetime=self._config.router_lifetime,
            options=options,
        )
        self._stats.count("nd.ra_out")
        self._emit(link, source, ALL_NODES, advert.to_message(), None)

    # --- receiving ----------------------------------------------------------

    def received(
        self, link: Link6, packet: Ipv6Packet, message: Icmpv6Message, now: Instant
    ) -> None:
        """One ND message (types 133..137) to us, checksum already verified."""
        if packet.hop_limit != ND_HOP_LIMIT:
            self._stats.drop(DropReason.ND_BAD_HOP_LIMIT)
            return
        handler = _HANDLERS[message.icmp_type]
        try:
            handler(self, link, packet, message, now)
        except ParseError as error:
            self._stats.drop(error.reason)

    def _neighbour_solicitation(
        self, link: Link6, packet: Ipv6Packet, message: Icmpv6Message, now: Instant
    ) -> None:
        ns = NeighborSolicitation.from_message(message)
        source, target = packet.source, ns.target
        dad = source == UNSPECIFIED
        if is_multicast6(target) or (
            dad and (packet.destination != solicited_node(target) or ns.options.source_lladdr)
        ):
            self._stats.drop(DropReason.ND_INVALID)  # RFC 4861 §7.1.1
            return
        entry = self._out.local.get(target)
        if entry is None or entry.interface != link.name:
            self._stats.drop(DropReason.NOT_FOR_US)
            return
        if entry.status is AddressState.TENTATIVE:
            if dad:
                self.duplicate_detected(entry, now)  # RFC 4862 §5.4.3: someone else probes it
            return
        if entry.status is AddressState.DUPLICATE:
            return
        self._stats.count("nd.ns_in")
        mac = ns.options.source_lladdr
        if not dad and mac is not None:
            self._out.neighbours.learned_unsolicited(link.name, source, mac, now)
        advert = NeighborAdvertisement(
            target,
            router=self._forwarding,
            solicited=not dad,
            override=True,
            options=NdOptions(target_lladdr=link.interface.mac),
        ).to_message()
        self._stats.count("nd.na_out")
        if dad:
            self._emit(link, target, ALL_NODES, advert, None)  # RFC 4861 §7.2.4
        elif mac is not None:
            self._emit(link, target, source, advert, mac)
        else:
            self._send_unicast(link, target, source, advert, now)

    def _neighbour_advertisement(
        self, link: Link6, packet: Ipv6Packet, message: Icmpv6Message, now: Instant
    ) -> None:
        na = NeighborAdvertisement.from_message(message)
        if is_multicast6(na.target) or (is_multicast6(packet.destination) and na.solicited):
            self._stats.drop(DropReason.ND_INVALID)  # RFC 4861 §7.1.2
            return
        self._stats.count("nd.na_in")
        entry = self._out.local.get(na.target)
        if entry is not None:
            if entry.status is AddressState.TENTATIVE:
                self.duplicate_detected(entry, now)  # RFC 4862 §5.4.4
            else:
                self._stats.count("nd.na_claims_our_address")
            return
        self._out.neighbours.advertisement_received(
            link.name,
            na.target,
            na.options.target_lladdr,
            now,
            solicited=na.solicited,
            override=na.override,
            router=na.router,
        )

    def _router_solicitation(
        self, link: Link6, packet: Ipv6Packet, message: Icmpv6Message, now: Instant
    ) -> None:
        rs = RouterSolicitation.from_message(message)
        if packet.source == UNSPECIFIED and rs.options.source_lladdr is not None:
            self._stats.drop(DropReason.ND_INVALID)  # RFC 4861 §6.1.1
            return
        if not self._forwarding:
            self._stats.count("nd.rs_ignored")  # RFC 4861 §6.2.6: hosts discard them
            return
        self._stats.count("nd.rs_in")
        if rs.options.source_lladdr is not None:
            self._out.neighbours.learned_unsolicited(
                link.name, packet.source, rs.options.source_lladdr, now
            )
        self._advertise(link, now)

    def _router_advertisement(
        self, link: Link6, packet: Ipv6Packet, message: Icmpv6Message, now: Instant
    ) -> None:
        if not is_link_local6(packet.source):
            self._stats.drop(DropReason.ND_INVALID)  # RFC 4861 §6.1.2: link-local source
            return
        ra = RouterAdvertisement.from_message(message)
        if not self._accept_ra:
            self._stats.drop(DropReason.RA_NOT_ACCEPTED)
            return
        self._stats.count("nd.ra_in")
        router = packet.source
        if ra.cur_hop_limit:
            link.hop_limit = ra.cur_hop_limit
        if ra.reachable_time:
            self._out.neighbours.set_base_reachable_time(ra.reachable_time * 1000)
        if ra.retrans_timer:
            self._out.neighbours.retrans_timer = ra.retrans_timer * 1000
        self._default_router(link, router, ra.router_lifetime, now)
        options = ra.options
        if options.source_lladdr is not None:
            self._out.neighbours.learned_unsolicited(
                link.name, router, options.source_lladdr, now, is_router=True
            )
        if options.mtu is not None and 1280 <= options.mtu <= link.interface.mtu:
            link.mtu = options.mtu  # RFC 4861 §6.3.4
        for prefix in options.prefixes:
            self._prefix(link, prefix, now)

    def _default_router(
        self, link: Link6, router: IPv6Address, lifetime_s: int, now: Instant
    ) -> None:
        timer = link.default_routers.get(router)
        if lifetime_s == 0:
            if timer is not None:
                self._forget_router(link, router, now)
            return
        if timer is None:
            timer = self._timers.new_timer(partial(self._forget_router, link, router))
            link.default_routers[router] = timer
            self._out.add_route(UNSPECIFIED, 0, via=router, interface=link.name)
            self._stats.count("nd.default_routers_learned")
        self._timers.arm(timer, now + lifetime_s * SECOND)

    def _forget_router(self, link: Link6, router: IPv6Address, now: Instant) -> None:
        timer = link.default_routers.pop(router, None)
        if timer is not None:
            self._timers.discard(timer)
        self._out.routes.remove(0, 0, gateway=router)

    def _prefix(self, link: Link6, info: PrefixInformation, now: Instant) -> None:
        """RFC 4861 §6.3.4 (on-link) and RFC 4862 §5.5.3 (autonomous)."""
        prefix = IPv6Address(int(info.prefix) & prefix_mask6(info.prefix_length))
        if is_link_local6(prefix) or info.preferred_lifetime > info.valid_lifetime:
            self._stats.count("nd.prefix_ignored")
            return
        if info.on_link and info.valid_lifetime:
            self._out.add_route(prefix, info.prefix_length, via=None, interface=link.name)
        if not (info.autonomous and self._config.slaac):
            return
        existing = [
            e
            for e in link.addresses
            if e.autoconfigured
            and int(e.address) & prefix_mask6(64) == int(prefix)
            and e.status is not AddressState.DUPLICATE
        ]
        if not existing:
            if info.valid_lifetime and info.prefix_length == 64:
                self.configure(
                    link,
                    prefix,
                    64,
                    now,
                    valid_s=info.valid_lifetime,
                    preferred_s=info.preferred_lifetime,
                )
            elif info.prefix_length != 64:
                self._stats.count("nd.prefix_ignored")
            return
        for entry in existing:
            self._update_lifetimes(entry, info, now)

    def _update_lifetimes(self, entry: Address6, info: PrefixInformation, now: Instant) -> None:
        """RFC 4862 §5.5.3(e), with its two-hour rule against lifetime-shortening spoofs."""
        remaining = None if entry.valid_until is None else (entry.valid_until - now) // SECOND
        valid = info.valid_lifetime
        if not (valid > TWO_HOURS_S or (remaining is not None and valid > remaining)):
            if remaining is not None and remaining <= TWO_HOURS_S:
                valid = remaining
            else:
                valid = TWO_HOURS_S
        self._set_lifetimes(entry, valid, info.preferred_lifetime, now)
        if entry.status is AddressState.DEPRECATED and info.preferred_lifetime:
            entry.status = AddressState.PREFERRED
        if entry.status is not AddressState.TENTATIVE:
            self._arm_lifetime(entry)

    def _redirect(
        self, link: Link6, packet: Ipv6Packet, message: Icmpv6Message, now: Instant
    ) -> None:
        if not self._config.accept_redirects or self._forwarding:
            self._stats.drop(DropReason.REDIRECT_IGNORED)  # RFC 4861 §8.3 is a may
            return
        redirect = Redirect.from_message(message)
        if not is_link_local6(packet.source) or is_multicast6(redirect.destination):
            self._stats.drop(DropReason.ND_INVALID)
            return
        route = self._out.routes.lookup(redirect.destination)
        if route is None or route.gateway != packet.source:
            self._stats.drop(DropReason.ND_INVALID)  # RFC 4861 §8.1: only from the first hop
            return
        self._stats.count("nd.redirects_followed")
        on_link = redirect.target == redirect.destination
        self._out.add_route(
            redirect.destination, 128, via=None if on_link else redirect.target, interface=link.name
        )
        mac = redirect.options.target_lladdr
        if mac is not None:
            self._out.neighbours.learned_unsolicited(
                link.name, redirect.target, mac, now, is_router=not on_link
            )


_HANDLERS = {
    wire.TYPE_ROUTER_SOLICITATION: NeighbourDiscovery._router_solicitation,
    wire.TYPE_ROUTER_ADVERTISEMENT: NeighbourDiscovery._router_advertisement,
    wire.TYPE_NEIGHBOR_SOLICITATION: NeighbourDiscovery._neighbour_solicitation,
    wire.TYPE_NEIGHBOR_ADVERTISEMENT: NeighbourDiscovery._neighbour_advertisement,
    wire.TYPE_REDIRECT: NeighbourDiscovery._redirect,
}
ND_TYPES = frozenset(_HANDLERS)

__all__ = ["ND_TYPES", "NeighbourDiscovery"]
