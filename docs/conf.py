"""Sphinx + MyST: the documentation site, built from these Markdown pages.

    python -m sphinx -W --keep-going -n -E -b html docs docs/_build/html

``tests/test_docs.py`` (run by ./test.sh) builds it that way: any warning — a broken link between
pages, a missing anchor, a page left out of the table of contents — fails the suite.
"""

project = "aqua_lab"
author = "aqua_lab developers"
copyright = "aqua_lab developers, UPL-1.0"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# `[text](page.md#a-heading)` links resolve (and are checked) for headings down to ###
myst_heading_anchors = 3
# Cross-references that do not resolve are warnings, hence errors with -W
nitpicky = True

html_theme = "alabaster"  # Sphinx's own: no extra package
html_title = "aqua_lab"
# the site stands alone: no "Powered by" links out of it (tests/test_docs.py checks every link)
html_theme_options = {
    "description": "several LLMs on one GPU shape",
    "fixed_sidebar": True,
    "show_powered_by": False,
    "page_width": "1240px",
}
html_static_path = ["_static"]  # custom.css: wide tables scroll
html_show_sphinx = False
html_show_sourcelink = False
