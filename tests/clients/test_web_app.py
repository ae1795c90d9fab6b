"""The web client as a person meets it, in Chromium against the local stack: phone layout, accessibility
(axe-core), text direction, errors in words, the length counter, the installable app, offline state,
the empty state and sign-out."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urljoin

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import APIResponse, Page, expect

from tests.clients.browser import WAIT_MS
from tests.clients.peers import PASSWORD
from tests.clients.web_pages import (
    by_id,
    conversation,
    expect_message,
    message,
    open_conversation,
    signed_in,
    type_line,
)

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SERIOUS = ("serious", "critical")


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as shown, one line each."""
    results = Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {[node['target'] for node in violation['nodes']]}"
        for violation in results.response["violations"]
        if violation["impact"] in SERIOUS
    ]


def with_some_messages(page: Page, partner: str) -> None:
    """A public line and a private one, so the views checked have messages of both kinds."""
    line = f"a line for everyone from {page.get_by_test_id('current-user').inner_text()}"
    type_line(page, line)
    expect_message(page, line, kind="public")
    type_line(page, f"/msg {partner} a line for you")


def test_axe_finds_nothing_serious_on_sign_in_chat_dark_and_phone_views(
    open_context, stack, new_username, peer
) -> None:
    """axe-core finds nothing serious or critical on the sign-in form, the chat, dark mode and a phone."""
    bob = new_username("bob")
    peer(bob)
    sign_in_page = open_context().new_page()
    sign_in_page.goto(stack.http_url)
    expect(by_id(sign_in_page, "sign-in-form")).to_be_visible()
    assert serious_violations(sign_in_page) == []

    for options in ({}, {"color_scheme": "dark"}, {"viewport": PHONE}):
        page = signed_in(open_context(**options), stack, new_username("axe"))
        with_some_messages(page, bob)
        expect(by_id(page, "online-user").filter(has_text=bob)).to_have_count(1, timeout=WAIT_MS)
        assert serious_violations(page) == [], options
        if "viewport" in options:  # the phone's other screen: the conversation list
            by_id(page, "back-button").click()
            expect(by_id(page, "conversation-list")).to_be_visible()
            assert serious_violations(page) == [], "phone list"


def no_sideways_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def test_a_phone_shows_the_list_and_the_thread_as_two_screens(
    open_context, stack, new_username, peer
) -> None:
    """At 390 by 844 both screens are reachable, who you are stays visible, nothing overflows sideways."""
    bob = new_username("bob")
    peer(bob)
    me = new_username("phone")
    page = signed_in(open_context(viewport=PHONE), stack, me)
    # The thread first: the composer and the identity are on screen, the list is not.
    for test_id in ("message-input", "send-button", "connection-state", "current-user", "thread-title"):
        expect(by_id(page, test_id)).to_be_in_viewport()
    expect(by_id(page, "conversation-list")).to_be_hidden()
    assert no_sideways_scroll(page)

    by_id(page, "back-button").click()
    expect(by_id(page, "conversation-list")).to_be_visible()
    expect(by_id(page, "message-input")).to_be_hidden()
    expect(by_id(page, "current-user")).to_be_in_viewport()
    expect(by_id(page, "online-user").filter(has_text=bob)).to_be_in_viewport(timeout=WAIT_MS)
    assert no_sideways_scroll(page)

    # Choosing someone online opens the private thread with them.
    page.locator(f'[data-testid="online-user"] button[data-with="{bob}"]').click()
    expect(by_id(page, "thread-title")).to_have_text(bob)
    expect(by_id(page, "message-input")).to_be_in_viewport()
    type_line(page, "x" * 300)  # a long unbroken line wraps rather than widening the page
    expect_message(page, "x" * 300, kind="private")
    expect(by_id(page, "current-user")).to_be_in_viewport()
    assert no_sideways_scroll(page)


def test_a_right_to_left_override_inside_a_message_stays_inside_it(open_context, stack, new_username) -> None:
    """Each message isolates its direction: an unclosed RLO in one cannot reorder the next message."""
    page = signed_in(open_context(), stack, new_username("rtl"))
    tricky = "invoice \u202egpj.exe"  # an RTL override, never closed
    type_line(page, tricky)
    type_line(page, "plain after it")
    expect_message(page, "plain after it", kind="public")
    for text in (tricky, "plain after it"):
        found = message(page, text).get_by_test_id("message-text")
        assert found.get_attribute("dir") == "auto"
        assert found.evaluate("e => getComputedStyle(e).unicodeBidi") == "isolate"
        assert message(page, text).evaluate("e => getComputedStyle(e).unicodeBidi") == "isolate"
    # The text that follows still reads left to right: its first letter is left of its last.
    after = message(page, "plain after it").get_by_test_id("message-text")
    first, last = after.evaluate(
        """e => {
          const range = document.createRange(), node = e.firstChild;
          const box = (i) => {
            range.setStart(node, i);
            range.setEnd(node, i + 1);
            return range.getBoundingClientRect().left;
          };
          return [box(0), box(node.length - 1)];
        }"""
    )
    assert first < last


def test_message_text_is_never_html_and_links_are_only_web_addresses(
    open_context, stack, new_username
) -> None:
    """Markup in a message is shown as text; http(s) addresses become links, javascript: does not."""
    page = signed_in(open_context(), stack, new_username("links"))
    line = '<img src=x onerror="window.pwned=1"> see https://example.com/a?b=1. or javascript:alert(1)'
    type_line(page, line)
    expect_message(page, line, kind="public")
    text = message(page, line).get_by_test_id("message-text")
    assert text.locator("img").count() == 0
    assert page.evaluate("window.pwned") is None
    links = text.locator("a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://example.com/a?b=1")
    expect(links).to_have_attribute("rel", "noopener noreferrer nofollow")


def test_a_refused_message_says_why_in_words_and_retry_sends_it(
    open_context, stack, new_username, peer
) -> None:
    """A message to a name nobody has yet fails in words with Retry; once the name exists, Retry sends it."""
    late = new_username("late")
    page = signed_in(open_context(), stack, new_username("eager"))
    type_line(page, f"/msg {late} are you there yet?")
    open_conversation(page, late)
    failed = message(page, "are you there yet?")
    expect(failed.get_by_test_id("failure")).to_contain_text(
        f"There is nobody called {late} here", timeout=WAIT_MS
    )
    expect(failed).not_to_contain_text("unknown_user")
    late_user = peer(late)  # the account exists now
    failed.get_by_test_id("retry").click()
    expect_message(page, "are you there yet?", kind="private", label=f"to {late}")
    expect(by_id(page, "retry")).to_have_count(0)
    late_user.wait_for_message("are you there yet?")


def test_the_counter_shows_near_the_limit_and_an_over_long_message_is_kept_not_cut(
    open_context, stack, new_username
) -> None:
    """Near 4,000 characters a counter counts down; past it Send is off and nothing is cut or sent."""
    page = signed_in(open_context(), stack, new_username("long"))
    counter = by_id(page, "char-counter")
    by_id(page, "message-input").fill("a" * 100)
    expect(counter).to_be_hidden()
    by_id(page, "message-input").fill("a" * 3990)
    expect(counter).to_have_text("10 characters left")
    too_long = "b" * 4005
    by_id(page, "message-input").fill(too_long)
    expect(counter).to_have_text("5 characters too many")
    expect(by_id(page, "send-button")).to_be_disabled()
    by_id(page, "message-input").press("Enter")  # no send: the form's button is off
    expect(by_id(page, "message-input")).to_have_value(too_long)  # kept whole, for editing
    assert message(page, too_long).count() == 0
    # Characters, as the server counts them: 4,000 emoji (two UTF-16 units each) fit.
    by_id(page, "message-input").fill("😀" * 4000)
    expect(counter).to_have_text("0 characters left")
    expect(by_id(page, "send-button")).to_be_enabled()


def test_the_page_is_an_installable_app_with_a_worker_that_caches_only_the_shell(
    open_context, stack, new_username
) -> None:
    """The manifest parses with its icons, the service worker takes over, and its cache holds no messages."""
    page = signed_in(open_context(), stack, new_username("pwa"))
    type_line(page, "not for the cache")
    expect_message(page, "not for the cache", kind="public")
    manifest_url = page.evaluate("document.querySelector('link[rel=manifest]').href")
    response = page.request.get(manifest_url)
    assert response.headers["content-type"] == "application/manifest+json"
    manifest = response.json()
    assert manifest["display"] == "standalone" and manifest["start_url"]
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512", "any"} <= sizes
    for icon in manifest["icons"]:
        fetched = page.request.get(urljoin(manifest_url, icon["src"]))
        assert fetched.status == 200 and fetched.headers["content-type"] == icon["type"]
    favicon = page.evaluate("document.querySelector('link[rel=icon]').href")
    assert page.request.get(favicon).status == 200

    scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.active && r.scope)")
    assert scope == stack.http_url.rstrip("/") + "/"
    cached = page.evaluate(
        """async () => {
          const urls = [];
          for (const name of await caches.keys()) {
            const cache = await caches.open(name);
            for (const request of await cache.keys()) urls.push(new URL(request.url).pathname);
          }
          return urls.sort();
        }"""
    )
    assert "/app.js" in cached and "/index.html" in cached
    assert "/config.json" not in cached
    assert set(cached) <= {"/", "/index.html", "/app.js", "/style.css", "/manifest.webmanifest"} | {
        f"/{icon['src']}" for icon in manifest["icons"]
    }


def test_offline_the_online_list_is_greyed_and_says_why(open_context, stack, new_username, peer) -> None:
    """Offline, the online list is marked stale and the page says why in words; back online it is fresh."""
    bob = new_username("bob")
    peer(bob)
    context = open_context()
    page = signed_in(context, stack, new_username("commuter"))
    expect(by_id(page, "online-user").filter(has_text=bob)).to_have_count(1, timeout=WAIT_MS)
    expect(by_id(page, "online-stale")).to_be_hidden()
    context.set_offline(True)
    expect(by_id(page, "people")).to_have_class("people stale", timeout=WAIT_MS)
    expect(by_id(page, "online-stale")).to_contain_text("no network connection")
    expect(by_id(page, "connection-state")).to_contain_text("Offline: this device has no network connection")
    opacity = by_id(page, "online-users").evaluate("e => Number(getComputedStyle(e).opacity)")
    assert opacity < 1
    context.set_offline(False)
    expect(by_id(page, "connection-state")).to_have_attribute("data-state", "online", timeout=WAIT_MS)
    expect(by_id(page, "online-stale")).to_be_hidden()
    expect(by_id(page, "people")).to_have_class("people")


def test_a_new_conversation_says_what_to_do(open_context, stack, new_username, peer) -> None:
    """An empty private thread tells the user it is private and to write below; Everyone is listed."""
    bob = new_username("bob")
    peer(bob)
    page = signed_in(open_context(), stack, new_username("new"))
    expect(conversation(page, None)).to_be_visible()
    type_line(page, f"/msg {bob}")  # /msg with a name only: opens the conversation
    expect(by_id(page, "thread-title")).to_have_text(bob)
    expect(by_id(page, "empty-state")).to_contain_text(f"private conversation with {bob}")
    expect(by_id(page, "empty-state")).to_contain_text("write below")
    type_line(page, "first words")
    expect_message(page, "first words", kind="private")
    expect(by_id(page, "empty-state")).to_be_hidden()


def refresh(page: Page, stack: Any, refresh_token: str) -> APIResponse:
    """REFRESH_TOKEN_AUTH against the stack's Cognito endpoint, as any client would call it."""
    return page.request.post(
        stack.config["cognitoEndpoint"],
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
        },
        data=json.dumps(
            {
                "AuthFlow": "REFRESH_TOKEN_AUTH",
                "ClientId": stack.config["userPoolClientId"],
                "AuthParameters": {"REFRESH_TOKEN": refresh_token},
            }
        ),
    )


def test_sign_out_revokes_the_refresh_token_and_leaves_other_sessions_alone(
    open_context, stack, new_username
) -> None:
    """After Sign out a copied refresh token is refused; the same user's other tab can still refresh."""
    alice = new_username("alice")
    page = signed_in(open_context(), stack, alice)
    other = signed_in(open_context(), stack, alice)
    token_of = '() => JSON.parse(sessionStorage.getItem("chat.session")).tokens.refreshToken'
    copied, kept = page.evaluate(token_of), other.evaluate(token_of)
    assert refresh(other, stack, copied).status == 200  # the copy works while signed in
    by_id(page, "sign-out").click()
    expect(by_id(page, "sign-in-view")).to_be_visible(timeout=WAIT_MS)
    refused = refresh(other, stack, copied)
    assert refused.status == 400
    assert refused.json()["__type"].endswith("NotAuthorizedException")
    assert refresh(other, stack, kept).status == 200
    assert page.evaluate('() => sessionStorage.getItem("chat.session")') is None
    # Signing in again works as before.
    by_id(page, "username").fill(alice)
    by_id(page, "password").fill(PASSWORD)
    by_id(page, "sign-in-button").click()
    expect(by_id(page, "connection-state")).to_have_attribute("data-state", "online", timeout=WAIT_MS)
