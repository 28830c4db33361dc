"""Suite-wide settings: the hypothesis profile, and the fast paths off on request.

Local runs explore: hypothesis draws fresh examples every run and keeps what
fails in its database, so a developer meets new counterexamples (each then
becomes an explicit regression test). CI (``CI`` set in the environment) runs
the ``ci`` profile: derandomized, so a submission is judged on the same
examples every time and cannot fail on a counterexample its change did not
cause; ``HYPOTHESIS_PROFILE`` chooses a profile explicitly.

``SIMTCP_FAST_PATHS=0`` runs everything with ``StackConfig.fast_paths`` off
(``tests/layered.py``): the servers of the integration tests too.
"""

from __future__ import annotations

import os

from hypothesis import settings

from tests import layered

if layered.requested():  # SIMTCP_FAST_PATHS=0: every stack on its layered paths alone
    layered.apply()

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "explore")
)
