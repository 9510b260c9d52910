"""The printable HTML audit report: the ledger export laid out for a compliance officer."""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["audit_html"]

_COLUMNS = ("entry_id", "period", "kind", "requester", "purpose", "mechanism", "epsilon",
            "spent_epsilon", "cap_epsilon", "ref_entry", "release_hash", "created_at",
            "entry_hash")
_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; width: 100%; font-size: 0.8em; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; }
th { background: #eee; }
.ok { color: #176f2c; } .broken { color: #b00020; }
code { font-size: 0.9em; word-break: break-all; }
@media print { body { margin: 0.5cm; } }
"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = escape("" if value is None else str(value))
    return f"<code>{text}</code>" if len(text) == 64 else text


def audit_html(doc: dict[str, Any]) -> str:
    """Render :func:`privacy.audit.export_json`'s document as a self-contained HTML page."""
    head, verify = doc["head"], doc["verify"]
    status = ("<p class='ok'><b>Chain verified</b>: every hash and total recomputes.</p>"
              if verify["ok"] else
              f"<p class='broken'><b>Chain broken</b> at entry {verify['first_broken_entry']}"
              "</p><ul>" + "".join(f"<li>{escape(p)}</li>" for p in verify["problems"])
              + "</ul>")
    rows = "".join("<tr>" + "".join(f"<td>{_cell(e.get(c))}</td>" for c in _COLUMNS) + "</tr>"
                   for e in doc["entries"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Privacy audit: {escape(doc['owner'])}</title><style>{_STYLE}</style></head>
<body>
<h1>Privacy audit report: {escape(doc['owner'])}</h1>
<p>Owner pseudonym <code>{escape(doc['owner_pseudonym'])}</code>, merchant type
{escape(doc['merchant_type'])}. Period {escape(head['period'])}.</p>
<p>Budget: spent ε = {head['spent_epsilon']:.4g} of cap ε = {head['cap_epsilon']:.4g}
at δ = {head['delta']:.1e}; {head['n_entries']} entries; last hash
<code>{escape(head['last_entry_hash'])}</code>.</p>
{status}
<h2>Ledger entries</h2>
<table><thead><tr>{''.join(f'<th>{c}</th>' for c in _COLUMNS)}</tr></thead>
<tbody>{rows}</tbody></table>
</body></html>
"""
