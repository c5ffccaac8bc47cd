"""The fake's own RFC 5849 signatures give the RFC's worked examples, and agree with what Authlib
signs for trickle on requests that are easy to get wrong."""

from __future__ import annotations

import pytest
import requests
from authlib.integrations.requests_client import OAuth1Auth

from trickle.testing import rfc5849

# RFC 5849 section 3.4.1.1's request
EXAMPLE_HEADER = (
    'OAuth realm="Example", oauth_consumer_key="9djdj82h48djs9d2", '
    'oauth_token="kkk9d7dh3k39sjv7", oauth_signature_method="HMAC-SHA1", '
    'oauth_timestamp="137131201", oauth_nonce="7d8f3e4a", '
    'oauth_signature="bYT5CMsGcbgUdFHObYMEfcx6bsw%3D"'
)
EXAMPLE_NORMALIZED = (
    "a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9djdj82h48djs9d2"
    "&oauth_nonce=7d8f3e4a&oauth_signature_method=HMAC-SHA1&oauth_timestamp=137131201"
    "&oauth_token=kkk9d7dh3k39sjv7"
)
EXAMPLE_BASE_STRING = (
    "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D"
    "%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce"
    "%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26"
    "oauth_token%3Dkkk9d7dh3k39sjv7"
)


def example_parameters() -> rfc5849.Pairs:
    header = rfc5849.parse_authorization(EXAMPLE_HEADER) or []
    signed = [(n, v) for n, v in header if n not in ("realm", "oauth_signature")]
    query = rfc5849.parse_form("b5=%3D%253D&a3=a&c%40=&a2=r%20b")
    return query + rfc5849.parse_form("c2&a3=2+q") + signed


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("AZaz09-._~", "AZaz09-._~"),  # unreserved: as it is
        ("a b", "a%20b"),
        ("a+b", "a%2Bb"),
        ("*'()!", "%2A%27%28%29%21"),
        ("/?#[]@=&%", "%2F%3F%23%5B%5D%40%3D%26%25"),
        ("é€", "%C3%A9%E2%82%AC"),  # UTF-8 octets, upper-case hex
    ],
)
def test_percent_encoding_leaves_only_the_unreserved_characters(text: str, encoded: str) -> None:
    assert rfc5849.percent_encode(text) == encoded
    assert rfc5849.percent_decode(encoded) == text


@pytest.mark.parametrize("broken", ["%2", "%zz", "%FF", "a%"])
def test_a_broken_percent_escape_is_an_error(broken: str) -> None:
    with pytest.raises(ValueError, match=r"percent escape|utf-8|codec"):
        rfc5849.percent_decode(broken)


def test_a_form_is_read_as_html_reads_it() -> None:
    assert rfc5849.parse_form("c2&a3=2+q&&b5=%3D%253D&a3=a") == [
        ("c2", ""),
        ("a3", "2 q"),
        ("b5", "=%3D"),
        ("a3", "a"),
    ]


def test_the_oauth_header_is_read_with_its_values_percent_decoded() -> None:
    pairs = rfc5849.parse_authorization(EXAMPLE_HEADER)
    assert pairs is not None
    assert pairs[0] == ("realm", "Example")
    assert dict(pairs)["oauth_signature"] == "bYT5CMsGcbgUdFHObYMEfcx6bsw="
    assert rfc5849.parse_authorization("Bearer abc") is None
    with pytest.raises(ValueError, match="not OAuth parameters"):
        rfc5849.parse_authorization('OAuth oauth_token="a", garbage')


def test_a_header_written_is_the_header_read() -> None:
    pairs = [("oauth_callback", "http://127.0.0.1:5/cb?x=1&y=é"), ("oauth_nonce", "a b")]
    header = rfc5849.authorization_header(pairs, realm="Photos")
    assert 'oauth_callback="http%3A%2F%2F127.0.0.1%3A5%2Fcb%3Fx%3D1%26y%3D%C3%A9"' in header
    assert rfc5849.parse_authorization(header) == [("realm", "Photos"), *pairs]


@pytest.mark.parametrize(
    ("scheme", "host", "path", "uri"),
    [
        ("HTTP", "EXAMPLE.COM:80", "/r%20v/X", "http://example.com/r%20v/X"),  # section 3.4.1.2
        ("https", "www.example.net:8080", "/", "https://www.example.net:8080/"),
        ("https", "www.example.net:443", "", "https://www.example.net/"),
        ("http", "127.0.0.1:53682", "/api/me", "http://127.0.0.1:53682/api/me"),
        ("http", "[::1]:8080", "/a", "http://[::1]:8080/a"),
        ("http", "[::1]", "/a", "http://[::1]/a"),
    ],
)
def test_the_base_string_uri_drops_default_ports_and_lowers_the_host(
    scheme: str, host: str, path: str, uri: str
) -> None:
    assert rfc5849.base_string_uri(scheme, host, path) == uri


def test_the_rfcs_example_normalizes_and_makes_its_base_string() -> None:
    pairs = example_parameters()
    assert rfc5849.normalized_parameters(pairs) == EXAMPLE_NORMALIZED
    uri = rfc5849.base_string_uri("http", "example.com", "/request")
    assert rfc5849.base_string("POST", uri, pairs) == EXAMPLE_BASE_STRING


@pytest.mark.parametrize(
    ("method", "uri", "pairs", "secrets", "signature"),
    [
        (  # RFC 5849 section 1.2: temporary credentials
            "POST",
            "https://photos.example.net/initiate",
            [
                ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
                ("oauth_signature_method", "HMAC-SHA1"),
                ("oauth_timestamp", "137131200"),
                ("oauth_nonce", "wIjqoS"),
                ("oauth_callback", "http://printer.example.com/ready"),
            ],
            ("kd94hf93k423kf44", ""),
            "74KNZJeDHnMBp0EMJ9ZHt/XKycU=",
        ),
        (  # token credentials
            "POST",
            "https://photos.example.net/token",
            [
                ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
                ("oauth_token", "hh5s93j4hdidpola"),
                ("oauth_signature_method", "HMAC-SHA1"),
                ("oauth_timestamp", "137131201"),
                ("oauth_nonce", "walatlh"),
                ("oauth_verifier", "hfdp7dh39dks9884"),
            ],
            ("kd94hf93k423kf44", "hdhd0244k9j7ao03"),
            "gKgrFCywp7rO0OXSjdot/IHF7IU=",
        ),
        (  # a protected resource
            "GET",
            "http://photos.example.net/photos",
            [
                ("file", "vacation.jpg"),
                ("size", "original"),
                ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
                ("oauth_token", "nnch734d00sl2jdk"),
                ("oauth_signature_method", "HMAC-SHA1"),
                ("oauth_timestamp", "137131202"),
                ("oauth_nonce", "chapoH"),
            ],
            ("kd94hf93k423kf44", "pfkkdhi9sl3r4s00"),
            "MdpQcU8iPSUjWoN/UDMsK2sui9I=",
        ),
    ],
)
def test_the_rfcs_worked_example_signatures_come_out(
    method: str,
    uri: str,
    pairs: rfc5849.Pairs,
    secrets: tuple[str, str],
    signature: str,
) -> None:
    assert rfc5849.hmac_sha1(rfc5849.base_string(method, uri, pairs), *secrets) == signature


def verify(prepared: requests.PreparedRequest, client_secret: str, token_secret: str) -> bool:
    """Whether a request Authlib signed is signed, by this module's reading of it."""
    header = rfc5849.parse_authorization(str(prepared.headers["Authorization"])) or []
    url = requests.utils.urlparse(prepared.url)
    pairs = [(n, v) for n, v in header if n not in ("realm", "oauth_signature")]
    pairs += rfc5849.parse_form(url.query)
    if prepared.headers.get("Content-Type") == "application/x-www-form-urlencoded":
        body = prepared.body if isinstance(prepared.body, str) else (prepared.body or b"").decode()
        pairs += rfc5849.parse_form(body)
    uri = rfc5849.base_string_uri(url.scheme, url.netloc, url.path)
    expected = rfc5849.hmac_sha1(
        rfc5849.base_string(str(prepared.method), uri, pairs), client_secret, token_secret
    )
    return expected == dict(header)["oauth_signature"]


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("GET", "http://127.0.0.1:8080/api/likes?limit=20&cursor=40", None),
        ("GET", "http://127.0.0.1:8080/api/likes?q=a+b&q=a%20b&e=%C3%A9&s=%2A%7E", None),
        ("GET", "https://Example.COM:443/r%20v/X?id=123", None),
        ("POST", "http://127.0.0.1:8080/oauth/request_token", None),
        ("POST", "http://127.0.0.1:8080/api/like?x=1", {"item": "a b&c", "tag": "é"}),
    ],
)
def test_what_authlib_signs_verifies_here(
    method: str, url: str, data: dict[str, str] | None
) -> None:
    auth = OAuth1Auth(
        "consumer-key",
        client_secret="consumer s3cret&more",
        token="token-value",
        token_secret="token s3cret",
        redirect_uri="http://127.0.0.1:5/callback?x=1",
    )
    prepared = requests.Request(method, url, data=data, auth=auth).prepare()
    assert verify(prepared, "consumer s3cret&more", "token s3cret")
    assert not verify(prepared, "consumer s3cret&more", "another secret")
