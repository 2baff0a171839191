"""The stewards' web UI in a real browser (Debian's chromium, headless) against `mdm serve`.

Screenshots of the queue, compare and person pages are saved under test-output/ui/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import ingest_many
from mdm.store.tables import ReviewItemRow
from tests.conftest import ADMIN_KEY, settings_for
from tests.serving import served

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path("test-output/ui")
ANA = {"given_name": "Ana", "family_name": "Ruiz", "email": "ana.ruiz@example.es"}

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("chromium is missing: .ci/run installs it (apt-get install chromium)")
    pytest.skip("chromium is not installed", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


def _household(family: str, mailbox: str) -> list[IncomingRecord]:
    return [
        IncomingRecord("crm", f"c-{family}-1", {"given_name": "John", "family_name": family,
                                                "email": mailbox}),
        IncomingRecord("ats", f"a-{family}-2", {"given_name": "Mary", "family_name": family,
                                                "email": mailbox, "job_title": "Nurse"}),
    ]  # fmt: skip


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[str, Registry]]:
    path = tmp_path / "ui.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    registry = Registry.from_settings(settings_for(url))
    ingest_many(
        registry,
        [
            *_household("Okafor", "okafors@example.org"),
            *_household("Lindqvist", "home@lindqvist.example"),
            IncomingRecord("crm", "c-ana", {**ANA, "job_title": "Nurse"}),
            IncomingRecord("hris", "h-ana", {**ANA, "job_title": "Surgeon"}),
        ],
        actor="setup",
    )  # fmt: skip
    with served(url, workers=1) as base:
        yield base, registry
    registry.close()


@pytest.fixture
def page(server: tuple[str, Registry]) -> Iterator[Page]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(base_url=server[0], viewport={"width": 1366, "height": 900})
        yield context.new_page()
        browser.close()


def _sign_in(page: Page) -> None:
    page.goto("/ui/reviews")
    expect(page).to_have_url(re.compile("/ui/login"))
    page.get_by_label("API key").fill("not-the-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.get_by_label("API key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()


def _open_items(registry: Registry) -> int:
    with registry.database.engine.connect() as conn:
        return int(
            conn.scalar(
                select(func.count())
                .select_from(ReviewItemRow)
                .where(ReviewItemRow.status == "open")
            )
            or 0
        )


def test_resolve_merge_and_not_a_match_from_the_queue(
    page: Page, server: tuple[str, Registry]
) -> None:
    _, registry = server
    _sign_in(page)
    expect(page.get_by_test_id("open-count")).to_have_text("2")
    page.screenshot(path=SHOTS / "queue.png", full_page=True)

    page.get_by_role("link", name="Compare").first.click()
    expect(page.get_by_role("heading", name="Same person?")).to_be_visible()
    # Both sides, and the rows where they differ marked.
    expect(page.locator("tr.diff", has_text="given name")).to_contain_text("John")
    expect(page.locator("tr.diff", has_text="given name")).to_contain_text("Mary")
    expect(page.get_by_role("cell", name="exact", exact=True).first).to_be_visible()
    page.screenshot(path=SHOTS / "compare.png", full_page=True)
    page.get_by_label("Note (optional)").fill("one person, two spellings")
    page.get_by_role("button", name="Merge").click()
    expect(page.get_by_role("status")).to_contain_text("merged")
    expect(page.get_by_test_id("open-count")).to_have_text("1")

    page.get_by_role("link", name="Compare").first.click()
    page.get_by_role("button", name="Not a match").click()
    expect(page.get_by_role("status")).to_contain_text("not a match")
    expect(page.get_by_test_id("open-count")).to_have_text("0")
    expect(page.get_by_text("Nothing to review.")).to_be_visible()
    assert _open_items(registry) == 0


def test_split_a_record_out_and_search(page: Page) -> None:
    _sign_in(page)
    page.get_by_label("Search persons").fill("ana.ruiz@example.es")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("1 found.")
    page.get_by_role("link", name="Ana Ruiz").click()
    expect(page.get_by_role("heading", name="Ana Ruiz")).to_be_visible()
    expect(page.get_by_role("cell", name="hris/h-ana", exact=True)).to_be_visible()
    page.screenshot(path=SHOTS / "person.png", full_page=True)

    page.get_by_role("button", name="Split hris/h-ana out to a new person").click()
    expect(page.get_by_role("status")).to_contain_text("split hris/h-ana")
    expect(page.get_by_role("cell", name="crm/c-ana", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="hris/h-ana", exact=True)).to_have_count(0)
    # The history shows the split, by whom.
    expect(page.locator(".history li", has_text="person.split")).to_contain_text("admin (ui)")

    page.get_by_label("Search persons").fill("Ana Ruiz")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("2 found.")


def test_a_form_without_its_csrf_token_is_refused(server: tuple[str, Registry]) -> None:
    base, registry = server
    with httpx.Client(base_url=base, follow_redirects=False) as client:
        login = client.post("/ui/login", data={"key": ADMIN_KEY})
        assert login.status_code == 303 and "mdm_session" in login.cookies
        assert "httponly" in login.headers["set-cookie"].lower()
        assert "samesite=strict" in login.headers["set-cookie"].lower()
        with registry.database.engine.connect() as conn:
            item = conn.scalars(select(ReviewItemRow.id)).first()
        form = {"decision": "merge", "person_a_version": "1", "person_b_version": "1"}
        refused = client.post(f"/ui/reviews/{item}/resolve", data=form)
        assert refused.status_code == 403
        forged = client.post(f"/ui/reviews/{item}/resolve", data={**form, "csrf": "guess"})
        assert forged.status_code == 403
        # Without the session cookie, the page asks to sign in.
        client.cookies.clear()
        assert client.get("/ui/reviews").headers["location"] == "/ui/login"
    assert _open_items(registry) == 2


def test_a_data_conflict_is_settled_from_its_page(page: Page, server: tuple[str, Registry]) -> None:
    _, registry = server
    offer = {"amount": 90000, "currency": "EUR", "period": "annual"}
    payroll = {"amount": 97000, "currency": "EUR", "period": "annual"}
    ingest_many(
        registry,
        [
            IncomingRecord("ats", "a-ana", {**ANA, "compensation": offer}),
            IncomingRecord("hris", "h-ana", {**ANA, "job_title": "Surgeon",
                                             "compensation": payroll}),
        ],
        actor="setup",
    )  # fmt: skip
    _sign_in(page)
    expect(page.get_by_test_id("open-count")).to_have_text("3")
    page.locator("tr", has_text="conflict").get_by_role("link", name="Compare").click()
    expect(page.get_by_role("heading", name="Which compensation?")).to_be_visible()
    expect(page.locator("tr", has_text="Golden now")).to_contain_text("90000 EUR annual")
    expect(page.locator("tr", has_text="Other")).to_contain_text("hris/h-ana")
    page.screenshot(path=SHOTS / "conflict.png", full_page=True)
    page.get_by_role("button", name="Take the other value").click()
    expect(page.get_by_role("status")).to_contain_text("other value taken")
    expect(page.get_by_test_id("open-count")).to_have_text("2")
