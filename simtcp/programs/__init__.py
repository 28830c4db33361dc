"""simtcp's programs: the ``simtcp`` command, the seed server, the demo, the simulator harness.

Everything here runs a program: it owns a clock, a device or a simulator and
drives the sans-IO core with them. This package and :mod:`simtcp.backends`
are the only places that import a backend; the core (everything else under
``simtcp/``) never imports from here. ``simtcp/__main__.py`` is this
package's entry point too.
"""
