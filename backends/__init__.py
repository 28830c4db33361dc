"""simtcp's backends: what drives the sans-IO core against a clock and a device.

The repository keeps this folder at the top level (``backends/sim.py``,
``backends/tap.py``); it installs as :mod:`simtcp.backends` (the folder is
linked into the package as ``simtcp/backends``), so ``pip install simtcp``
puts no generic top-level ``backends`` package into site-packages. Import it
as ``simtcp.backends.sim``, never as ``backends.sim``.

- :mod:`.sim`, :mod:`.impair`: the simulator (virtual clock, lossy links, pcap);
- :mod:`.tap`, :mod:`.tapdevice`, :mod:`.tapsetup`, :mod:`.vnet`: real Linux
  TAP devices (pyroute2 set-up, the epoll loop, virtio-net headers);
- :mod:`.aio_sim`, :mod:`.aio_tap`: the asyncio adapters each needs.

Only these modules and :mod:`simtcp.programs` may import a backend; the arrow
test (``tests/unit/test_architecture.py``) holds the core to that.
"""

if __name__ == "backends":  # imported from a checkout as a top-level package
    raise ImportError(
        "the backends folder is the package simtcp.backends: "
        "import simtcp.backends.sim (not backends.sim)"
    )
