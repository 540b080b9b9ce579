"""Sphinx configuration: MyST pages, furo, and an API reference built from ``__all__``."""

from __future__ import annotations

import dgproto

project = "dgproto"
author = "dgproto contributors"
copyright = "dgproto contributors"
release = dgproto.__version__
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

# automodule with :members: documents exactly each module's __all__, so a name added
# there appears in the reference without editing the docs.
autodoc_default_options = {"members": True, "undoc-members": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_class_signature = "separated"
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = f"dgproto {release}"
