"""Great Expectations' Data Docs page made standalone: no CDN, no network, styled inline.

GX's page view loads Bootstrap, jQuery, Vega and Font Awesome from public CDNs. A validation page
written to S3 and opened from the Airflow UI (or on the local backend, from the embedded S3 server
with no internet) would then render unstyled and log script errors. So the CDN references, the images
and the scripts that need jQuery are removed, and a small stylesheet for the classes GX's templates use
is put inline, with the page's two filter buttons in plain JavaScript. What is lost: Vega charts, which
GX draws for a few distribution expectations only; their numbers stay in the tables.
"""

from __future__ import annotations

import re

# What fetches from elsewhere: stylesheets and icons, scripts (with their bodies); images become their alt text.
_EXTERNAL = (
    re.compile(r"<link\b[^>]*>", re.IGNORECASE),
    re.compile(r"<script\b[^>]*>.*?</script>", re.IGNORECASE | re.DOTALL),
)
_IMAGE = re.compile(r"<img\b[^>]*>", re.IGNORECASE | re.DOTALL)
_ALT = re.compile(r"""\balt=["']([^"']*)["']""", re.IGNORECASE)
# Links to the Data Docs site's index and suite pages: no site is built, so they would lead nowhere.
_SITE_LINK = re.compile(r"""<a\s+href="(?:\.\./)+[^"#]*\.html"\s*>(.*?)</a>""", re.IGNORECASE | re.DOTALL)

# The Bootstrap 4 classes GX's validation page uses, enough to lay it out and colour the verdicts.
STYLE = """
*{box-sizing:border-box}body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#212529}
a{color:#0b5cad;text-decoration:none}a:hover{text-decoration:underline}
.navbar{display:flex;align-items:center;padding:8px 24px;border-bottom:1px solid #dee2e6}
.navbar-brand{font-weight:600;font-size:18px;margin-right:16px}.breadcrumb{display:flex;list-style:none;margin:0;padding:4px 8px}
.breadcrumb-item+.breadcrumb-item::before{content:"/";padding:0 6px;color:#6c757d}.bg-light{background:#f8f9fa}
.container-fluid{padding:24px 40px}.row{display:flex;flex-wrap:wrap;margin:0 -8px}
.row>*{padding:0 8px}.col-12,.col-sm-12{flex:0 0 100%;max-width:100%}
@media(min-width:768px){.col-md-2{flex:0 0 16.66%;max-width:16.66%}.col-md-10{flex:0 0 83.33%;max-width:83.33%}
.col-md-6{flex:0 0 50%;max-width:50%}}
.card{border:1px solid #dee2e6;border-radius:4px;margin-bottom:16px;background:#fff}
.card-header{padding:8px 12px;background:#f7f7f9;border-bottom:1px solid #dee2e6}.card-body{padding:12px}
.table{width:100%;border-collapse:collapse;margin-bottom:8px}.table td,.table th{padding:4px 8px;border-top:1px solid #dee2e6;
text-align:left;vertical-align:top}.table-bordered td,.table-bordered th{border:1px solid #dee2e6}
.table-responsive{overflow-x:auto}.badge{display:inline-block;padding:1px 6px;border-radius:4px;font-size:12px}
.badge-secondary{background:#6c757d;color:#fff}.alert{padding:8px 12px;border-radius:4px;margin:4px 0}
.alert-secondary{background:#e2e3e5}.text-success{color:#198754}.text-danger{color:#b02a37}
.btn{display:inline-block;padding:4px 10px;border:1px solid #0b5cad;border-radius:4px;cursor:pointer;margin:2px}
.btn-primary{background:#0b5cad;color:#fff}.btn input{display:none}.lead{font-size:16px;color:#555}
.nav{list-style:none;padding:0;margin:0}.nav-link{display:block;padding:2px 0}.sticky{position:sticky;top:8px}
.d-none,.modal,.collapse:not(.show){display:none}.d-flex{display:flex}.justify-content-center{justify-content:center}
.fas.fa-check-circle::before{content:"\\2714"}.fas.fa-times::before{content:"\\2716"}.fas{font-style:normal}
@media(prefers-color-scheme:dark){body{background:#1e1e1e;color:#ddd}.card{background:#262626;border-color:#444}
.card-header,.bg-light,.alert-secondary{background:#333}a{color:#7ab7ff}}
"""

# The page's two filter buttons call these; GX's own versions need jQuery.
_FILTERS = """
function _rows(show){document.querySelectorAll('.hide-succeeded-validation-target-child').forEach(function(el){
var row=el.parentElement;if(row){row.style.display=show?'':'none';}});
document.querySelectorAll('.hide-succeeded-validation-target').forEach(function(el){el.style.display=show?'':'none';});}
function showAllValidations(){_rows(true);}
function hideSucceededValidations(){_rows(false);}
"""


def standalone_page(page: str) -> str:
    """``page`` (GX's rendered HTML) with nothing loaded from elsewhere and its style inline.

    :param page: the HTML of ``DefaultJinjaPageView().render(...)``.
    :return: the same document: external stylesheets, scripts and images removed, dead site links
        made plain text, the inline stylesheet and the filter script added to ``<head>``.
    """
    for pattern in _EXTERNAL:
        page = pattern.sub("", page)
    page = _IMAGE.sub(lambda m: alt.group(1) if (alt := _ALT.search(m.group(0))) else "", page)
    page = _SITE_LINK.sub(r"\1", page)
    head = f"<style>{STYLE}</style><script>{_FILTERS}</script>"
    if re.search(r"</head>", page, re.IGNORECASE):
        return re.sub(r"</head>", lambda _: head + "</head>", page, count=1, flags=re.IGNORECASE)
    return head + page
