"""HTML pages for people who open the server in a browser."""

from __future__ import annotations

from html import escape

from sciportal import __version__
from sciportal.services.examples import EXAMPLES
from sciportal.web.app import App

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}
code,pre{background:#f4f4f4;padding:.1em .3em;border-radius:3px}
pre{padding:.6em;overflow-x:auto} table{border-collapse:collapse}
td,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left}
h1 small{font-size:50%;color:#666}
"""


def _page(title: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}"
        f"<hr><p><small>sciportal {__version__}</small></p></body></html>"
    ).encode()


def example_query(table: str) -> str:
    """The first query we suggest to a newcomer."""
    return "SELECT TOP 5 * FROM " + table  # noqa: S608 (shown to people, never executed here)


def home_page(app: App, base: str) -> bytes:
    """The services home: what is published, the service URLs, how to connect."""
    tap = f"{base}/tap"
    rows = []
    for t in app.tables_for(None):
        if t.schema.lower() == "tap_schema":
            continue
        n = f"{t.nrows:,}" if t.nrows is not None else ""
        rows.append(
            f"<tr><td><code>{escape(t.name)}</code></td><td>{n}</td>"
            f"<td>{len(t.columns)}</td><td>{escape(t.title or t.description[:120])}</td></tr>"
        )
    tables = (
        "<table><tr><th>table</th><th>rows</th><th>columns</th><th>about</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else "<p>Nothing is published yet: run <code>sciportal demo</code> or "
        "<code>sciportal publish RD.yaml</code>.</p>"
    )
    first = next(
        (t.name for t in app.tables_for(None) if t.schema.lower() != "tap_schema"),
        "TAP_SCHEMA.tables",
    )
    example = escape(example_query(first))
    body = f"""
<h1>{escape(app.config["server.title"])} <small>Virtual Observatory services</small></h1>
<h2>Published tables</h2>{tables}
<h2>Services</h2>
<table>
<tr><td>TAP (ADQL queries, sync and async)</td><td><a href="{tap}"><code>{tap}</code></a></td></tr>
<tr><td>VOSI capabilities</td><td><a href="{tap}/capabilities"><code>{tap}/capabilities</code></a></td></tr>
<tr><td>VOSI tables</td><td><a href="{tap}/tables"><code>{tap}/tables</code></a></td></tr>
<tr><td>Example queries</td><td><a href="{tap}/examples"><code>{tap}/examples</code></a></td></tr>
</table>
<h2>Connect</h2>
<p><b>TOPCAT</b>: <i>VO &rarr; Table Access Protocol (TAP) Query</i>, paste
<code>{tap}</code> into &ldquo;TAP URL&rdquo; at the bottom and press <i>Use Service</i>.</p>
<p><b>pyvo</b>:</p>
<pre>import pyvo
tap = pyvo.dal.TAPService("{tap}")
print(tap.run_sync("{example}").to_table())</pre>
<p><b>STILTS</b>: <code>stilts tapquery tapurl={tap} adql="{example}"</code></p>
"""
    return _page(app.config["server.title"], body)


def tap_page(app: App, base: str) -> bytes:
    """The TAP service root, with its endpoints and examples."""
    tap = f"{base}/tap"
    ex = "".join(
        f"<h3>{escape(e.name)}</h3><p>{escape(e.doc)}</p><pre>{escape(e.query)}</pre>"
        for e in EXAMPLES[:5]
    )
    body = f"""
<h1>TAP service <small>{escape(tap)}</small></h1>
<p>Table Access Protocol 1.1 with ADQL 2.1. Endpoints:
<a href="{tap}/sync">sync</a>, <a href="{tap}/async">async</a> (UWS 1.1),
<a href="{tap}/capabilities">capabilities</a>, <a href="{tap}/availability">availability</a>,
<a href="{tap}/tables">tables</a>, <a href="{tap}/examples">examples</a>.</p>
<h2>Examples</h2>{ex}
"""
    return _page("TAP service", body)
