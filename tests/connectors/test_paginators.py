"""Paginators: each platform's way of pointing at the next page, read from its answer."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from trickle.connectors.errors import PlatformError
from trickle.connectors.paginators import (
    BeforeId,
    LinkHeader,
    NextToken,
    NextUrl,
    PageNumbers,
    PageRequest,
    dig,
    same_origin,
)

API = "https://api.example.test"
FIRST = PageRequest(f"{API}/v1/likes", {"count": 20})


def answer(headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.headers.update(headers or {})
    response.url = FIRST.url
    return response


# ---------------------------------------------------------------------------
# Link header


def test_a_link_header_leads_to_its_next_url_without_extra_parameters() -> None:
    link = f'<{API}/v1/likes?max_id=7&limit=2>; rel="next", <{API}/v1/likes?min_id=9>; rel="prev"'
    assert LinkHeader().next_request(FIRST, answer({"Link": link}), []) == PageRequest(
        f"{API}/v1/likes?max_id=7&limit=2"
    )


@pytest.mark.parametrize("headers", [{}, {"Link": f'<{API}/v1/likes?min_id=9>; rel="prev"'}])
def test_no_link_header_or_no_next_is_the_last_page(headers: dict[str, str]) -> None:
    assert LinkHeader().next_request(FIRST, answer(headers), []) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/v1/likes?page=2",
        "http://api.example.test/v1/likes?page=2",  # the same host, without TLS
        "https://api.example.test:8443/v1/likes?page=2",
    ],
)
def test_a_link_to_another_origin_is_refused(url: str) -> None:
    with pytest.raises(PlatformError, match="another host"):
        LinkHeader().next_request(FIRST, answer({"Link": f'<{url}>; rel="next"'}), [])


# ---------------------------------------------------------------------------
# next URL in the body


def test_a_next_url_in_the_body_is_followed_as_is() -> None:
    body = {"collection": [], "next_href": f"{API}/me/likes/tracks?cursor=abc&limit=50"}
    assert NextUrl(("next_href",)).next_request(FIRST, answer(), body) == PageRequest(
        f"{API}/me/likes/tracks?cursor=abc&limit=50"
    )


def test_a_relative_next_url_is_resolved_against_the_api_root() -> None:
    body = {"paging": {"next": "/me/likes?page=2&per_page=10", "previous": None}}
    assert NextUrl(("paging", "next")).next_request(FIRST, answer(), body) == PageRequest(
        f"{API}/me/likes?page=2&per_page=10"
    )


@pytest.mark.parametrize("body", [{"next_href": None}, {"next_href": ""}, {}, {"x": 1}])
def test_no_next_url_is_the_last_page(body: dict[str, Any]) -> None:
    assert NextUrl(("next_href",)).next_request(FIRST, answer(), body) is None


def test_a_next_url_elsewhere_or_of_the_wrong_type_is_a_platform_error() -> None:
    with pytest.raises(PlatformError, match="another host"):
        NextUrl(("next_href",)).next_request(FIRST, answer(), {"next_href": "//evil.test/x"})
    with pytest.raises(PlatformError, match="next_href: expected a string"):
        NextUrl(("next_href",)).next_request(FIRST, answer(), {"next_href": 12})


# ---------------------------------------------------------------------------
# next token in the body


def test_a_next_token_is_sent_back_as_a_parameter_keeping_the_others() -> None:
    paginator = NextToken(("meta", "next_token"), "pagination_token")
    body = {"data": [], "meta": {"result_count": 3, "next_token": "7140dibdnow9c7btw3w29"}}
    assert paginator.next_request(FIRST, answer(), body) == PageRequest(
        FIRST.url, {"count": 20, "pagination_token": "7140dibdnow9c7btw3w29"}
    )


def test_no_token_or_the_same_token_again_is_the_last_page() -> None:
    paginator = NextToken(("cursor",), "cursor")
    assert paginator.next_request(FIRST, answer(), {"records": []}) is None
    again = FIRST.with_params(cursor="3kfx")
    assert paginator.next_request(again, answer(), {"cursor": "3kfx"}) is None


# ---------------------------------------------------------------------------
# page numbers


def test_page_numbers_go_on_until_the_last_page_even_as_strings() -> None:
    paginator = PageNumbers(("photos", "pages"), ("photos", "page"))
    body = {"photos": {"page": 1, "pages": "3", "perpage": 100, "total": "250"}}
    assert paginator.next_request(FIRST, answer(), body) == FIRST.with_params(page=2)
    body["photos"]["page"] = "3"
    assert paginator.next_request(FIRST, answer(), body) is None


@pytest.mark.parametrize("pages", ["many", -1, True, 1.5, "1e9"])
def test_a_page_count_that_is_not_a_number_is_a_platform_error(pages: object) -> None:
    paginator = PageNumbers(("photos", "pages"), ("photos", "page"))
    with pytest.raises(PlatformError, match=r"photos\.pages: expected a page number"):
        paginator.next_request(FIRST, answer(), {"photos": {"page": 1, "pages": pages}})


# ---------------------------------------------------------------------------
# before_id with meta.more


def test_before_id_pages_by_the_paging_id_not_the_item_id() -> None:
    body = {
        "meta": {"code": 200, "more": True, "min_id": "1001", "max_id": "1050"},
        "data": [{"id": "9999", "pagination_id": "1050"}, {"id": "12", "pagination_id": "1001"}],
    }
    assert BeforeId().next_request(FIRST, answer(), body) == FIRST.with_params(before_id="1001")


def test_before_id_stops_when_there_is_no_more() -> None:
    body = {"meta": {"code": 200, "more": False, "min_id": "1001"}, "data": []}
    assert BeforeId().next_request(FIRST, answer(), body) is None
    assert BeforeId().next_request(FIRST, answer(), {"meta": {"code": 200}}) is None


def test_before_id_refuses_a_more_that_is_not_a_boolean_and_a_page_that_repeats() -> None:
    with pytest.raises(PlatformError, match=r"meta\.more: expected true or false"):
        BeforeId().next_request(FIRST, answer(), {"meta": {"more": "yes", "min_id": "1"}})
    again = FIRST.with_params(before_id="1001")
    assert (
        BeforeId().next_request(again, answer(), {"meta": {"more": True, "min_id": "1001"}}) is None
    )


# ---------------------------------------------------------------------------
# helpers


def test_dig_walks_objects_and_names_the_path_of_a_non_object() -> None:
    assert dig({"a": {"b": 3}}, ("a", "b")) == 3
    assert dig({"a": None}, ("a", "b")) is None
    with pytest.raises(PlatformError, match=r"a: expected an object"):
        dig({"a": [1]}, ("a", "b"))


def test_same_origin_resolves_relative_urls_and_keeps_the_query() -> None:
    assert same_origin("/x?y=1", API, where="t") == f"{API}/x?y=1"
    assert same_origin(f"{API}/x", API, where="t") == f"{API}/x"
