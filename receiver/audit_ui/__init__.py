"""The read-only audit page's parts: its session, HTML, chain verification and checkpoint view."""
