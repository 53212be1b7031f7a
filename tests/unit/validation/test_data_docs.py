"""The Data Docs page opens offline: no stylesheet, script or image from a CDN, its style inline."""

from __future__ import annotations

import re

from airflow_dl_provider.validation.data_docs import standalone_page

# Any reference that makes a browser fetch from the network (a plain <a href> does not).
_FETCHES = re.compile(
    r"<link\b[^>]*href=[\"']?(https?:)?//|<script\b[^>]*src=|<img\b[^>]*src=[\"']?(https?:)?//|@import",
    re.IGNORECASE,
)


def test_the_real_gx_page_loads_nothing_from_elsewhere() -> None:
    from airflow_dl_provider.validation.data import load_expectations, read_frame, validate

    frame = read_frame(b"a\n1\n2\n", "csv")
    outcome = validate(
        frame,
        load_expectations(
            [
                {"type": "expect_column_values_to_not_be_null", "column": "a"},
                {"type": "expect_column_values_to_be_between", "column": "a", "min_value": 0, "max_value": 1},
            ]
        ),
    )

    page = outcome.data_docs_html()

    assert page.lstrip().lower().startswith("<!doctype html")
    assert not _FETCHES.search(page), _FETCHES.search(page)
    assert not re.search(r"(src|href)=[\"']https?://[^\"']*\.(css|js)\b", page, re.IGNORECASE)
    assert "<style>" in page and ".card{" in page  # styled without the CDN's Bootstrap
    assert "$(" not in page  # GX's own scripts need jQuery, which is not loaded
    assert "function hideSucceededValidations" in page  # its filter buttons still work
    assert "Great Expectations" in page  # the logo's alt text stands in for the logo
    assert "expect_column_values_to_be_between" in page or "values must be greater than" in page


def test_cdn_references_and_dead_site_links_go_while_the_content_stays() -> None:
    page = (
        "<!DOCTYPE html><html><head>"
        '<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap.min.css"/>'
        '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'
        '<link rel="shortcut icon" href="../../static/favicon.ico" type="image/x-icon"/>'
        '</head><body><a href="../../../../index.html">Home</a>'
        '<img class="x" src="https://assets.example/logo.png" alt="Logo"/>'
        "<script>\n$('.x').modal();\n</script><table><tr><td>a</td></tr></table>"
        '<a href="#section-1">Overview</a></body></html>'
    )

    out = standalone_page(page)

    assert "https://" not in out and "favicon" not in out and "$(" not in out
    assert "<body>HomeLogo<table><tr><td>a</td></tr></table>" in out
    assert '<a href="#section-1">Overview</a>' in out  # in-page links stay
    assert out.index("<style>") < out.index("</head>")
