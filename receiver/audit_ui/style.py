"""The audit page's one stylesheet, and the Content-Security-Policy that allows it and nothing else.

The style is inline and admitted by its hash, so the policy can forbid every other source: no
script, no frame, no form posting elsewhere. Status colours: green for a credential handed over,
grey for one withdrawn or a user gone, red for what Nextcloud refused, amber for pauses.
"""

from __future__ import annotations

import base64
import hashlib

STYLE = """
:root { --ok:#1a7f37; --ok-bg:#dafbe1; --bad:#cf222e; --bad-bg:#ffebe9; --warn:#9a6700;
  --warn-bg:#fff8c5; --ended:#57606a; --ended-bg:#eaeef2; --info:#0969da; --info-bg:#ddf4ff;
  --line:#d0d7de; --muted:#57606a; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
  background: #f6f8fa; }
header.bar { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.5rem;
  background: #24292f; color: #fff; }
header.bar a { color: #fff; text-decoration: none; }
header.bar .brand { font-weight: 600; font-size: 1.05rem; }
header.bar nav { display: flex; gap: 1rem; flex: 1; }
header.bar form { display: flex; align-items: center; gap: .6rem; margin: 0; }
header.bar .who { color: #d0d7de; font-size: .9rem; }
main { max-width: 72rem; margin: 1.5rem auto; padding: 0 1.5rem; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; word-break: break-all; }
h2 { font-size: 1.1rem; margin: 0 0 .6rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.25rem;
  margin-bottom: 1.25rem; }
.narrow { max-width: 32rem; margin: 3rem auto; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(20rem, 1fr)); gap: 1.25rem; }
label { display: block; font-weight: 600; margin-bottom: .3rem; }
input, select { font: inherit; margin: 0; padding: .4rem .6rem; border: 1px solid var(--line);
  border-radius: 6px; }
input[type=password], .search input { width: 100%; }
button, .button { font: inherit; padding: .4rem .9rem; border-radius: 6px; border: 1px solid #1f883d;
  background: #1f883d; color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
header.bar button { background: transparent; border-color: #8c959f; }
.search { display: flex; gap: .6rem; align-items: end; }
.search div { flex: 1; }
.filters { display: flex; gap: .8rem; align-items: end; flex-wrap: wrap; }
.error { color: var(--bad); background: var(--bad-bg); border: 1px solid var(--bad); border-radius: 6px;
  padding: .5rem .8rem; }
.note { color: var(--muted); font-size: .9rem; }
table { width: 100%; border-collapse: collapse; background: #fff; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .85rem; color: var(--muted); font-weight: 600; }
tr.tone-ok td:first-child { box-shadow: inset 4px 0 var(--ok); }
tr.tone-bad td:first-child { box-shadow: inset 4px 0 var(--bad); }
tr.tone-warn td:first-child { box-shadow: inset 4px 0 var(--warn); }
tr.tone-ended td:first-child { box-shadow: inset 4px 0 var(--ended); }
tr.tone-info td:first-child { box-shadow: inset 4px 0 var(--info); }
.badge { display: inline-block; padding: .05rem .55rem; border-radius: 999px; font-size: .85rem;
  font-weight: 600; border: 1px solid; white-space: nowrap; }
.badge.tone-ok { color: var(--ok); background: var(--ok-bg); }
.badge.tone-bad { color: var(--bad); background: var(--bad-bg); }
.badge.tone-warn { color: var(--warn); background: var(--warn-bg); }
.badge.tone-ended { color: var(--ended); background: var(--ended-bg); }
.badge.tone-info { color: var(--info); background: var(--info-bg); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
td time { white-space: nowrap; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; }
.mono { word-break: break-all; }
.pager { display: flex; gap: 1rem; margin-top: 1rem; }
footer { max-width: 72rem; margin: 2rem auto; padding: 0 1.5rem; color: var(--muted); font-size: .85rem; }
"""

_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
