"""The audit page in headless Chromium against a real `credledger serve`: sign in, search, read a timeline."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser, Page, async_playwright

from events.crypto import MasterKeyRing
from events.envelope import SYSTEM_STREAM
from events.event_types import UserDisabled, to_new_event
from events.writer import GroupCommitWriter
from receiver.bearer_tokens import issue_token
from receiver.credentials import provision_credential, revoke_credential
from tests.e2e.processes import ROOT, free_port, start_service, wait_until_healthy
from tests.factories import master_keys_setting

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
# Headless, and nothing that reaches the network on its own or needs a GPU or a sandbox.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / "test-artifacts" / "audit-page.png"
PASSWORD = "Abcde-fghij-kmnop-qrstw-xyzAB"


@dataclass(frozen=True)
class Served:
    """The running service's base URL and an auditor token for it."""

    url: str
    token: str


@pytest.fixture
async def served(
    database_url: str,
    pool: asyncpg.Pool,
    writer: GroupCommitWriter,
    master_keys: MasterKeyRing,
    tmp_path: Path,
) -> AsyncIterator[Served]:
    """`credledger serve` on a fresh database holding an auditor token and alice's revoked credential."""
    token, created = issue_token("auditor", "browser test")
    await writer.append(to_new_event(created, stream=SYSTEM_STREAM, source="test"))
    await provision_credential(
        pool,
        writer,
        master_keys,
        user_id="alice",
        login_name="alice@ldap",
        scopes=["files"],
        app_password=PASSWORD,
        source="astrolabe",
    )
    await writer.append(to_new_event(UserDisabled(), stream="alice", source="nextcloud"))
    await revoke_credential(writer, user_id="alice", reason="admin", source="admin-script")
    port = free_port()
    service = start_service(
        port,
        tmp_path / "service.log",
        database_url=database_url,
        master_keys=master_keys_setting(master_keys),
        data_dir=str(tmp_path / "var"),
        sync_enabled="false",
    )
    try:
        await wait_until_healthy(port, service)
        yield Served(f"http://127.0.0.1:{port}", token)
    finally:
        service.send_signal(signal.SIGTERM)
        await asyncio.to_thread(service.wait, 60)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, driven by Playwright (no browser download)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def sign_in(page: Page, url: str, token: str) -> None:
    """Open the sign-in form, fill in `token` and send it."""
    await page.goto(f"{url}/audit")
    await page.fill("#token", token)
    await page.click("button:has-text('Sign in')")


async def test_an_auditor_signs_in_finds_a_revoked_user_and_reads_the_timeline(
    served: Served, browser: Browser
) -> None:
    """Sign in, search alice, read her events in log order and her revoked state; keep a screenshot."""
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await sign_in(page, served.url, served.token)
    # Signed in, /audit (where the form also lives) shows the search box instead.
    await page.wait_for_selector("form.search #user_id")
    await page.fill("#user_id", "alice")
    await page.click("button:has-text('Show timeline')")
    await page.wait_for_url(f"{served.url}/audit/users/alice")

    rows = page.locator("#timeline tbody tr")
    types = [await rows.nth(i).get_attribute("data-type") for i in range(await rows.count())]
    positions = [
        int(await rows.nth(i).get_attribute("data-position") or 0) for i in range(await rows.count())
    ]
    assert types == ["credential.provisioned", "user.disabled", "credential.revoked"]
    assert positions == sorted(set(positions))
    assert await page.inner_text("#state .badge") == "revoked"
    assert "admin-script" in await rows.nth(2).inner_text()

    SCREENSHOT.parent.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 0


async def test_a_wrong_token_cannot_sign_in(served: Served, browser: Browser) -> None:
    """The form comes back with the error, and the browser holds no session cookie."""
    context = await browser.new_context()
    page = await context.new_page()
    await sign_in(page, served.url, served.token[:-4] + "AAAA")
    await page.wait_for_url(f"{served.url}/audit/sign-in")
    assert "That token is not valid" in await page.inner_text("[role=alert]")
    assert await page.is_visible("#token")
    assert "credledger_audit" not in {cookie["name"] for cookie in await context.cookies()}
