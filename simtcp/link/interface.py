"""An Ethernet interface of the stack and what its link does for it (offloads)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..wire.ipv4 import MAX_TOTAL_LENGTH


@dataclass(frozen=True, slots=True, kw_only=True)
class InterfaceOffload:
    """What an interface's link does for the stack (DESIGN.md "Offload-ready").

    Per frame, :meth:`Stack.receive_frame` may say more (``checksum_verified``,
    ``gso_size``); these are what holds for every frame of the interface.
    """

    rx_checksum_verified: bool = False
    """Every received frame's IPv4/TCP/UDP checksums were already verified by the link."""
    tx_checksum: bool = False
    """The link finishes TCP/UDP checksums of frames we send. Every unfragmented TCP
    datagram, and UDP one with a checksum, we send on the interface then carries the
    partial checksum (the pseudo-header sum, folded, not complemented: Linux's
    CHECKSUM_PARTIAL), forwarded ones included; see :mod:`simtcp.wire.offload`. Over
    IPv6 only our TCP super-segments (larger than the MTU) are partial: an IPv6 frame's
    size is what tells the link (``TcpFrames._send_ipv6``)."""
    max_segment: int = 0
    """Largest TCP segment (payload) the link cuts into MTU-sized frames (TSO/GSO); 0 means
    none. Such segments leave whole even though the datagram exceeds the MTU."""
    software_segmentation: bool = False
    """The link cuts nothing: the stack cuts TCP segments of up to ``max_segment`` into
    MTU-sized frames itself, just before they leave (GSO in software, as Linux does for a
    NIC without TSO). TCP then pays its per-segment costs once per ``max_segment`` bytes,
    and the link sees the frames it would have seen without. Needs ``max_segment``, and
    excludes ``tx_checksum`` (the frames leave finished)."""

    def __post_init__(self) -> None:
        if not 0 <= self.max_segment <= MAX_TOTAL_LENGTH:
            raise ConfigError(f"max_segment {self.max_segment} outside 0..{MAX_TOTAL_LENGTH}")
        if self.software_segmentation and (not self.max_segment or self.tx_checksum):
            raise ConfigError("software_segmentation needs max_segment and no tx_checksum")


NO_OFFLOAD = InterfaceOffload()
"""A link that does nothing for us (and what our own addresses are reached by)."""


@dataclass(slots=True)
class Interface:
    """One Ethernet interface: its name, MAC, MTU, offloads and addresses."""

    name: str
    mac: bytes
    mtu: int
    offload: InterfaceOffload
    addresses: list[tuple[int, int]] = field(default_factory=list)  # (address, prefix length)
    broadcasts: set[int] = field(default_factory=set)


__all__ = ["NO_OFFLOAD", "Interface", "InterfaceOffload"]
