"""Signing in (login links, GitHub through the fake), the OAuth callback, creators' pages."""

from __future__ import annotations

from datetime import timedelta

import requests

from tests.web.conftest import BASE, CSRF, Site, csrf_of, words
from trickle.core.clock import clock
from trickle.core.escrow import get_or_create_creator
from trickle.core.logins import create_login_link
from trickle.core.users import set_public


def test_the_home_page_offers_sign_in_with_each_platform_set_up(site: Site) -> None:
    page = site.client().get("/")
    assert page.status_code == 200
    assert "Sign in with GitHub" in page.text


def test_a_login_link_asks_first_then_signs_in_once(site: Site) -> None:
    site.user("alice")
    with site.app.db.session() as session:
        token = create_login_link(session, "alice", timedelta(hours=1))
    client = site.client()

    asked = client.get(f"/login/{token}")
    assert asked.status_code == 200
    assert client.get("/me").status_code == 302  # a GET alone signed nobody in
    used = client.post(f"/login/{token}", data={"csrf_token": csrf_of(asked.text)})
    assert (used.status_code, used.headers["Location"]) == (302, "/me")
    assert "alice's month" in client.get("/me").text

    again = site.client().post(f"/login/{token}", data={"csrf_token": CSRF})
    assert again.status_code == 400
    assert "used already" in again.text


def test_an_expired_login_link_signs_nobody_in(site: Site) -> None:
    site.user("alice")
    with site.app.db.session() as session:
        token = create_login_link(session, "alice", timedelta(minutes=5))
    clock.advance(timedelta(minutes=6))
    assert site.client().post(f"/login/{token}", data={"csrf_token": CSRF}).status_code == 400


def test_a_post_without_the_csrf_token_is_refused(site: Site) -> None:
    site.user("alice")
    with site.app.db.session() as session:
        token = create_login_link(session, "alice", timedelta(hours=1))
    client = site.client()
    assert client.post(f"/login/{token}").status_code == 400
    assert client.post(f"/login/{token}", data={"csrf_token": "another"}).status_code == 400
    assert client.post(f"/login/{token}", data={"csrf_token": CSRF}).status_code == 302


def test_next_never_leads_off_the_site(site: Site) -> None:
    site.user("alice")
    for target, lands in [
        ("/me/months/2026-09", "/me/months/2026-09"),
        ("https://evil.example/", "/me"),
        ("//evil.example/", "/me"),
        ("/\\evil.example", "/me"),
        ("javascript:alert(1)", "/me"),
    ]:
        with site.app.db.session() as session:
            token = create_login_link(session, "alice", timedelta(hours=1))
        used = site.client().post(f"/login/{token}", data={"csrf_token": CSRF, "next": target})
        assert used.headers["Location"] == lands, target


def test_signing_in_with_github_creates_the_user_and_links_the_account(site: Site) -> None:
    client = site.client()
    back = site.through_github(client, "/signin/github", as_login="alice")

    answer = client.get(back)

    assert (answer.status_code, answer.headers["Location"]) == (302, "/me")
    page = client.get("/me").text
    assert "alice's month" in page
    assert "github</strong> alice" in page
    assert "your trickle account was created" in page


def test_signing_in_with_mastodon_asks_which_server_and_links_the_account_there(
    site: Site,
) -> None:
    home = site.client().get("/").text
    assert '<label for="signin-server-mastodon">Your Mastodon server</label>' in home
    assert 'id="signin-server-mastodon" name="server" required' in home
    client = site.client()
    back = site.through_mastodon(client, "/signin/mastodon", as_login="alice")

    answer = client.get(back)

    assert (answer.status_code, answer.headers["Location"]) == (302, "/me")
    page = client.get("/me").text
    assert "mastodon</strong> alice@" in page
    assert 'id="link-server-mastodon" name="server" required' in page
    assert site.mastodon.registrations == 1  # trickle's app, registered at the first link


def test_a_server_that_is_not_one_is_refused_with_a_clear_message(site: Site) -> None:
    for given, says in [
        ("", "the server is empty"),
        ("mastodon.social/@alice", "is not a server"),
        ("http://mastodon.example", "over https only"),
    ]:
        answer = site.client().post("/signin/mastodon", data={"csrf_token": CSRF, "server": given})
        assert answer.status_code == 400, given
        assert says in answer.text, given


def test_a_forged_callback_state_signs_nobody_in(site: Site) -> None:
    client = site.client()
    back = site.through_github(client, "/signin/github", as_login="alice")
    forged = back.replace("state=", "state=forged")

    assert client.get(forged).status_code == 400
    assert client.get("/me").status_code == 302


def test_a_callback_from_another_browser_signs_nobody_in(site: Site) -> None:
    back = site.through_github(site.client(), "/signin/github", as_login="alice")
    stranger = site.client()  # a login-CSRF: someone else's code in this browser

    assert stranger.get(back).status_code == 400
    assert stranger.get("/me").status_code == 302


def test_denied_consent_says_so_and_links_nothing(site: Site) -> None:
    client = site.client()
    begun = client.post("/signin/github", data={"csrf_token": CSRF})
    site.github.sign_in_browser("alice")
    site.github.github.oauth.consent("deny")
    back = requests.get(begun.headers["Location"], allow_redirects=False, timeout=10)
    answer = client.get(back.headers["Location"].removeprefix(BASE), follow_redirects=True)
    assert "you did not allow trickle" in answer.text
    assert client.get("/me").status_code == 302


def test_sign_in_attempts_are_rate_limited(site: Site) -> None:
    site.flask.extensions["trickle_sign_in_limit"].limit = 3
    client = site.client()
    codes = [client.post("/login/nothing", data={"csrf_token": CSRF}).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]


def test_a_creators_page_shows_likers_and_money_waiting_and_how_to_claim(site: Site) -> None:
    ada = site.waiting_money_for_ada()

    page = site.client().get(f"/c/github/{ada}")

    assert page.status_code == 200
    text = words(page.text)
    assert "1 person flattred ada (1 flattr)" in text
    # settled on 2 November 2026, 01:00, and held for escrow_days (90)
    assert "Waiting for ada: 5.00 EUR in 1 share(s), held until 2027-01-31" in text
    assert "Sign in with this account to claim it" in text
    assert "alice" not in page.text  # likers are private unless they choose


def test_a_liker_who_chose_to_be_public_is_named(site: Site) -> None:
    ada = site.waiting_money_for_ada()
    with site.app.db.session() as session:
        set_public(session, "alice", True)
    assert "<li>alice</li>" in site.client().get(f"/c/github/{ada}").text


def test_signing_in_as_the_creator_claims_the_money_waiting(site: Site) -> None:
    ada = site.waiting_money_for_ada()
    client = site.client()
    back = site.through_github(client, "/signin/github", as_login="ada")

    client.get(back)

    page = client.get("/me").text
    assert "ada's month" in page
    assert "Received as a creator 5.00 EUR" in words(page)
    claimed = site.client().get(f"/c/github/{ada}").text
    assert "ada is on trickle" in claimed


def test_html_in_a_creator_handle_is_escaped(site: Site) -> None:
    with site.app.db.session() as session:
        get_or_create_creator(session, "github", "666", '<script>alert("x")</script>')
    page = site.client().get("/c/github/666").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_a_creator_trickle_has_not_seen_is_not_found(site: Site) -> None:
    assert site.client().get("/c/github/nobody").status_code == 404
    assert site.client().get("/c/nowhere/1").status_code == 404
