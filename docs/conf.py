"""Sphinx configuration: the API reference from the docstrings, and a guide per use.

Build: ``python3 -m pip install -e '.[docs]' && python3 -m sphinx -W --keep-going -b html docs
/tmp/simtcp-docs`` (.ci/run does, with warnings as errors).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout, not an installed simtcp

import simtcp  # noqa: E402

project = "simtcp"
author = "the simtcp authors"
release = version = simtcp.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build"]
root_doc = "index"
html_theme = "alabaster"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# A re-exported class is documented once, where it is defined (ignore-module-all).
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
# Cross-references that do not resolve are not errors: the docstrings name many private
# helpers and types from typing; a broken reST construct still is (-W).
nitpicky = False
