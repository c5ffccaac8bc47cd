"""The signed-in user's pages: budget, privacy, linking and unlinking, months, statements."""

from __future__ import annotations

from sqlalchemy import select

from tests.web.conftest import CSRF, Site, words
from trickle.core.models import AccountStatus, LinkedAccount, User
from trickle.core.users import current_budget


def test_pages_of_a_user_need_a_signed_in_user(site: Site) -> None:
    answer = site.client().get("/me/months/2026-09")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/?next=/me/months/2026-09"


def test_the_budget_is_set_and_bad_input_is_refused_plainly(site: Site) -> None:
    client = site.signed_in(site.user("alice"))
    client.post("/me/budget", data={"csrf_token": CSRF, "budget": "7.50"})
    refused = client.post(
        "/me/budget", data={"csrf_token": CSRF, "budget": "1.234"}, follow_redirects=True
    )
    assert "Budget not changed" in refused.text
    assert client.post("/me/budget", data={"budget": "9"}).status_code == 400  # no CSRF token
    with site.app.db.reader() as session:
        user = session.scalars(select(User).where(User.name == "alice")).one()
        assert current_budget(session, user.id) == 750


def test_the_month_shows_each_flattr_with_its_projected_share(site: Site) -> None:
    site.user("alice", budget=500, funds=1000)
    from trickle.linking.service import Linker

    site.github.link(Linker(site.app), "alice")
    repo = site.github.publish("ada", 1)[0]
    site.poll_everything()
    from datetime import timedelta

    from trickle.core.clock import clock

    clock.advance(timedelta(hours=1))
    site.github.like("alice", repo, clock.now())
    clock.advance(timedelta(hours=1))
    site.poll_everything()

    page = words(site.signed_in("alice").get("/me").text)

    assert "1 flattr(s). Projected" in page
    assert "5.00 EUR reserved until ada joins" in page
    assert "Where the money goes, by creator" in page


def test_a_settled_month_has_a_statement_and_a_csv(site: Site) -> None:
    site.waiting_money_for_ada()
    client = site.signed_in("alice")
    assert "2026-10 (settled)" in words(client.get("/me").text)

    statement = words(client.get("/me/months/2026-10").text)
    csv = client.get("/me/months/2026-10.csv")

    assert "Statement for 2026-10" in statement
    assert "Settled" in statement
    assert csv.mimetype == "text/csv"
    lines = csv.text.splitlines()
    assert lines[0] == "date,platform,item_url,creator_id,creator,amount,currency,state,recipient"
    assert lines[1].endswith(",ada,5.00,EUR,reserved,")
    assert client.get("/me/months/2099-01").status_code == 404
    assert client.get("/me/months/not-a-month").status_code == 404


def test_linking_another_github_account_goes_through_github(site: Site) -> None:
    client = site.signed_in(site.user("alice"))
    back = site.through_github(client, "/link/github", as_login="bob")
    client.get(back)
    page = words(client.get("/me").text)
    assert "github bob: polling" in page


def test_unlinking_someone_elses_account_is_not_found(site: Site) -> None:
    site.user("bob")
    from trickle.linking.service import Linker

    site.github.link(Linker(site.app), "bob")
    with site.app.db.reader() as session:
        bobs = session.scalars(select(LinkedAccount.id)).one()
    alice = site.signed_in(site.user("alice"))

    assert alice.post(f"/accounts/{bobs}/unlink", data={"csrf_token": CSRF}).status_code == 404
    bob = site.signed_in("bob")
    assert bob.post(f"/accounts/{bobs}/unlink", data={"csrf_token": CSRF}).status_code == 302
    with site.app.db.reader() as session:
        assert session.get_one(LinkedAccount, bobs).status == AccountStatus.UNLINKED.value


def test_the_public_choice_is_the_users(site: Site) -> None:
    client = site.signed_in(site.user("alice"))
    client.post("/me/privacy", data={"csrf_token": CSRF, "public": "yes"})
    with site.app.db.reader() as session:
        assert session.scalars(select(User.public)).one()
    client.post("/me/privacy", data={"csrf_token": CSRF})
    with site.app.db.reader() as session:
        assert not session.scalars(select(User.public)).one()
