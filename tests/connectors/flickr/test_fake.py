"""FakeFlickr answers as Flickr's reference says: one REST endpoint, JSON with strings where
Flickr sends strings, errors inside HTTP 200s, and the OAuth 1.0a legs at Flickr's paths."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from authlib.integrations.requests_client import OAuth1Auth

from trickle.connectors.flickr.fake import FakeFlickr, FakePhoto

KEY = "f4k3-fl1ckr-k3y"
SECRET = "f4k3-fl1ckr-s3cr3t-0123"
CALLBACK = "http://127.0.0.1:8765/callback"


@pytest.fixture
def fake(now: datetime) -> Iterator[FakeFlickr]:
    with FakeFlickr() as server:
        server.register_consumer(KEY, SECRET)
        server.add_member("nadia", nsid="35034348999@N01")
        server.add_member("bees", nsid="12037949754@N01")
        yield server


def call(fake: FakeFlickr, username: str = "nadia", **params: Any) -> requests.Response:
    """A REST call signed with ``username``'s token credentials."""
    issued = next((t for t in fake.access_tokens if t.username == username), None)
    if issued is None:
        issued = fake.issue(username, KEY)
    signer = OAuth1Auth(KEY, client_secret=SECRET, token=issued.token, token_secret=issued.secret)
    query = {"format": "json", "nojsoncallback": "1", **params}
    return requests.get(f"{fake.base_url}/services/rest/", params=query, auth=signer, timeout=5)


def faves(fake: FakeFlickr, count: int, now: datetime) -> list[FakePhoto]:
    photos = [fake.photo("bees", f"hive {n}") for n in range(count)]
    for n, photo in enumerate(photos):
        fake.fave("nadia", photo, now - timedelta(hours=count - n))
    return photos


def test_the_login_names_the_token_owners_nsid_and_username(fake: FakeFlickr) -> None:
    answer = call(fake, method="flickr.test.login")
    assert answer.status_code == 200
    assert answer.json() == {
        "user": {"id": "35034348999@N01", "username": {"_content": "nadia"}},
        "stat": "ok",
    }


def test_favorites_come_newest_faved_first_with_flickrs_strings(
    fake: FakeFlickr, now: datetime
) -> None:
    photos = faves(fake, 3, now)

    body = call(fake, method="flickr.favorites.getList", per_page="2", extras="owner_name").json()

    assert body["stat"] == "ok"
    listed = body["photos"]
    assert (listed["page"], listed["pages"], listed["perpage"], listed["total"]) == (1, "2", 2, "3")
    first = listed["photo"][0]
    assert first["id"] == photos[2].id
    assert first["owner"] == "12037949754@N01"
    assert first["ownername"] == "bees"
    assert first["date_faved"] == str(int((now - timedelta(hours=1)).timestamp()))
    second = call(fake, method="flickr.favorites.getList", per_page="2", page="2").json()
    assert [p["id"] for p in second["photos"]["photo"]] == [photos[0].id]
    assert "ownername" not in second["photos"]["photo"][0]


def test_fave_dates_bound_the_list_and_per_page_is_at_most_500(
    fake: FakeFlickr, now: datetime
) -> None:
    photos = faves(fake, 4, now)
    since = str(int((now - timedelta(hours=2)).timestamp()))
    until = str(int((now - timedelta(hours=2)).timestamp()))

    recent = call(fake, method="flickr.favorites.getList", min_fave_date=since).json()
    one = call(
        fake, method="flickr.favorites.getList", min_fave_date=since, max_fave_date=until
    ).json()
    big = call(fake, method="flickr.favorites.getList", per_page="9000").json()

    assert [p["id"] for p in recent["photos"]["photo"]] == [photos[3].id, photos[2].id]
    assert [p["id"] for p in one["photos"]["photo"]] == [photos[2].id]
    assert big["photos"]["perpage"] == 500


def test_an_empty_list_has_no_pages(fake: FakeFlickr) -> None:
    body = call(fake, method="flickr.favorites.getList").json()
    assert body["photos"] == {"page": 1, "pages": "0", "perpage": 100, "total": "0", "photo": []}


def test_without_nojsoncallback_the_json_is_wrapped_for_a_callback(fake: FakeFlickr) -> None:
    answer = call(fake, method="flickr.test.login", nojsoncallback="0")
    assert answer.text.startswith("jsonFlickrApi({")
    assert answer.text.endswith("})")


def fail(answer: requests.Response) -> tuple[int, str]:
    assert answer.status_code == 200
    body = answer.json()
    assert body["stat"] == "fail"
    return body["code"], body["message"]


def test_errors_come_inside_a_200_with_flickrs_codes(fake: FakeFlickr) -> None:
    unsigned = requests.get(
        f"{fake.base_url}/services/rest/",
        params={"method": "flickr.test.login", "format": "json", "nojsoncallback": "1"},
        timeout=5,
    )
    wrong = OAuth1Auth(KEY, client_secret="not-it", token="t", token_secret="s")
    forged = requests.get(
        f"{fake.base_url}/services/rest/",
        params={"method": "flickr.test.login", "format": "json", "nojsoncallback": "1"},
        auth=wrong,
        timeout=5,
    )

    issued = fake.issue("nadia", KEY)
    wrong_secret = OAuth1Auth(
        KEY, client_secret="not-it", token=issued.token, token_secret=issued.secret
    )
    unsigned_right = requests.get(
        f"{fake.base_url}/services/rest/",
        params={"method": "flickr.test.login", "format": "json", "nojsoncallback": "1"},
        auth=wrong_secret,
        timeout=5,
    )

    assert fail(unsigned) == (97, "Missing signature")
    assert fail(forged) == (98, "Invalid auth token")  # no such token
    assert fail(unsigned_right) == (96, "Invalid signature")
    assert fail(call(fake, method="flickr.photos.nope")) == (
        112,
        'Method "flickr.photos.nope" not found',
    )
    assert fail(call(fake, method="flickr.favorites.getList", user_id="1@N01")) == (
        1,
        "User not found",
    )
    assert fail(call(fake, method="flickr.test.login", format="rest")) == (
        111,
        'Format "rest" not found',
    )


def test_a_revoked_token_is_an_invalid_auth_token(fake: FakeFlickr) -> None:
    call(fake, method="flickr.test.login")
    fake.revoke("nadia")
    assert fail(call(fake, method="flickr.test.login")) == (98, "Invalid auth token")
    assert fake.problems == ["token_revoked"]


def test_a_staged_error_answers_every_call_of_that_member_only(fake: FakeFlickr) -> None:
    fake.fail("nadia", 105, "Service currently unavailable")
    assert fail(call(fake, method="flickr.test.login")) == (105, "Service currently unavailable")
    assert call(fake, "bees", method="flickr.test.login").json()["stat"] == "ok"
    fake.fail("nadia", None)
    assert call(fake, method="flickr.test.login").json()["stat"] == "ok"


def test_a_rate_limited_member_gets_429_with_a_page_and_no_retry_time(
    fake: FakeFlickr, now: datetime
) -> None:
    fake.rate_limit("nadia", now + timedelta(minutes=10))
    answer = call(fake, method="flickr.test.login")
    assert answer.status_code == 429
    assert answer.headers["Content-Type"] == "text/html"
    assert "Retry-After" not in answer.headers


def test_the_access_token_answer_names_the_member_as_flickr_does(fake: FakeFlickr) -> None:
    fake.sign_in("nadia")
    asking = OAuth1Auth(KEY, client_secret=SECRET, redirect_uri=CALLBACK)
    token = dict(
        parse_qsl(
            requests.post(
                f"{fake.base_url}/services/oauth/request_token", auth=asking, timeout=5
            ).text
        )
    )
    approved = requests.get(
        f"{fake.base_url}/services/oauth/authorize",
        params={"oauth_token": token["oauth_token"], "perms": "read"},
        allow_redirects=False,
        timeout=5,
    )
    verifier = dict(parse_qsl(approved.headers["Location"].split("?", 1)[1]))["oauth_verifier"]
    exchanging = OAuth1Auth(
        KEY,
        client_secret=SECRET,
        token=token["oauth_token"],
        token_secret=token["oauth_token_secret"],
        verifier=verifier,
    )

    answer = requests.post(
        f"{fake.base_url}/services/oauth/access_token", auth=exchanging, timeout=5
    )

    fields = dict(parse_qsl(answer.text))
    assert set(fields) == {"fullname", "oauth_token", "oauth_token_secret", "user_nsid", "username"}
    assert (fields["user_nsid"], fields["username"]) == ("35034348999@N01", "nadia")


def test_only_flickrs_paths_are_served(fake: FakeFlickr) -> None:
    for path in ("/api/likes", "/api/me", "/oauth/authorize"):
        assert requests.get(f"{fake.base_url}{path}", timeout=5).status_code == 404
