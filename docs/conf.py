"""Sphinx configuration: `make docs` builds docs/_build/html with warnings as errors (-W).

The API reference is generated from the package's own docstrings (autosummary over
``airflow_dl_provider``); examples are included from the real DAG files between their
``# [START name]`` / ``# [END name]`` markers, so neither can drift from the code.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Importing the package imports Airflow: never let a docs build touch the user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-dl-docs-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_dl_provider import __version__  # noqa: E402

project = "airflow_dl_provider"
author = "airflow_dl_provider developers"
copyright = "airflow_dl_provider developers"
version = release = __version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.viewcode"]
exclude_patterns = ["_build", "ci"]
templates_path = ["_templates"]
html_theme = "alabaster"
html_static_path: list[str] = []
html_title = f"airflow_dl_provider {release}"

autosummary_generate = True
autosummary_imported_members = False
# A module documents what it defines; what it re-exports (``__all__``) is documented where it lives.
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# The Airflow 2.11 view imports Flask AppBuilder (Airflow 3 no longer installs it) and 2.x permissions.
autodoc_mock_imports = ["flask_appbuilder", "airflow.www", "airflow.security.permissions"]
