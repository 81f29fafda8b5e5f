"""The panels beside every signed-in page: the hash chain's status and the latest signed checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from events.verify import ChainReport
from receiver.audit_ui.layout import Viewer, badge, esc, layout, search_box, when


@dataclass(frozen=True, slots=True)
class ChainView:
    """What the page knows of the chain: the latest verification (if any) and the head now."""

    report: ChainReport | None
    checked_at: datetime | None
    head_position: int


def chain_panel(view: ChainView) -> str:
    """The chain's status as last verified by this process, with a button to verify it now."""
    verify = '<p><a class="button" href="/audit/verify">Verify the chain now</a></p>'
    report = view.report
    if report is None or view.checked_at is None:
        body = (
            f"<p>{badge('not verified yet', 'info')}</p>"
            f"<p>The log holds {view.head_position:,} events. Verification recomputes every hash "
            "from position 1, so it runs when asked, not on every page.</p>"
        )
    elif report.intact:
        grown = view.head_position - report.head_position
        body = (
            f"<p>{badge('intact', 'ok')} verified {when(view.checked_at)}</p>"
            f"<dl><dt>Checked</dt><dd>positions 1 to {report.head_position:,}</dd>"
            f'<dt>Head hash</dt><dd class="mono">{esc(report.head_hash.hex())}</dd></dl>'
            + (f'<p class="note">{grown:,} events were appended since.</p>' if grown > 0 else "")
        )
    else:
        body = (
            f"<p>{badge('tampered', 'bad')} verified {when(view.checked_at)}</p>"
            f"<dl><dt>First bad position</dt><dd>{esc(report.bad_position)}</dd>"
            f"<dt>Why</dt><dd>{esc(report.reason)}</dd>"
            f"<dt>Intact up to</dt><dd>position {report.head_position:,}</dd></dl>"
        )
    return f'<section class="card" id="chain"><h2>Hash chain</h2>{body}{verify}</section>'


@dataclass(frozen=True, slots=True)
class CheckpointView:
    """What the page shows of a signed checkpoint, and whether the log still holds the head it signed."""

    size: int
    head_hash: str
    signed_at: datetime
    key_id: str
    log_holds_head: bool


def checkpoint_panel(checkpoint: CheckpointView | None, *, available: bool) -> str:
    if not available:
        body = f"<p>{badge('not available yet', 'ended')} This service does not sign checkpoints yet.</p>"
    elif checkpoint is None:
        body = f"<p>{badge('none yet', 'info')} No checkpoint has been signed yet.</p>"
    else:
        held = (
            badge("the log still holds this head", "ok")
            if checkpoint.log_holds_head
            else badge("the log no longer holds this head: truncated or rewritten", "bad")
        )
        body = (
            f"<p>{held}</p>"
            f"<dl><dt>Log size</dt><dd>{checkpoint.size:,} events</dd>"
            f'<dt>Head hash</dt><dd class="mono">{esc(checkpoint.head_hash)}</dd>'
            f"<dt>Signed</dt><dd>{when(checkpoint.signed_at)}</dd>"
            f'<dt>Key</dt><dd class="mono">{esc(checkpoint.key_id)}</dd></dl>'
        )
    return f'<section class="card" id="checkpoint"><h2>Latest signed checkpoint</h2>{body}</section>'


def home_page(viewer: Viewer, panels: str) -> str:
    body = (
        '<section class="card"><h1>Find a user</h1>'
        f"{search_box()}"
        '<p class="note">Or browse <a href="/audit/events">every event</a>, filtered by type or user.</p>'
        f'</section><div class="grid">{panels}</div>'
    )
    return layout("Audit", body, viewer=viewer)


def verify_page(viewer: Viewer, panel: str) -> str:
    return layout("Hash chain", f"<h1>Hash chain</h1>{panel}", viewer=viewer)
