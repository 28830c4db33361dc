"""Suite-wide settings: the hypothesis profile.

Local runs explore: hypothesis draws fresh examples every run and keeps what
fails in its database, so a developer meets new counterexamples (each then
becomes an explicit regression test). CI (``CI`` set in the environment) runs
the ``ci`` profile: derandomized, so a submission is judged on the same
examples every time and cannot fail on a counterexample its change did not
cause; ``HYPOTHESIS_PROFILE`` chooses a profile explicitly.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "explore")
)
