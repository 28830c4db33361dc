"""The link layer: Ethernet interfaces with their offloads (:mod:`.interface`), and ARP's
neighbour cache (:mod:`.arp`)."""

from __future__ import annotations

from .interface import NO_OFFLOAD, Interface, InterfaceOffload

__all__ = ["NO_OFFLOAD", "Interface", "InterfaceOffload"]
