"""PII masking for the request log: what must be masked, and what review text must keep."""

from __future__ import annotations

import pytest

from model_server.privacy import EMAIL_MASK, PHONE_MASK, URL_MASK, mask_pii


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mail me at john.doe@example.com now", f"Mail me at {EMAIL_MASK} now"),
        ("JANE_99+films@mail.co.uk.", f"{EMAIL_MASK}."),
        ("contact: jürgen.müller@beispiel.de", f"contact: {EMAIL_MASK}"),
        ("o'brien@example.ie wrote", f"{EMAIL_MASK} wrote"),
        ("write to john [at] example [dot] com please", f"write to {EMAIL_MASK} please"),
        ("write to john (at) example (dot) org", f"write to {EMAIL_MASK}"),
        ("<a.b@c.io>", f"<{EMAIL_MASK}>"),
    ],
)
def test_emails_are_masked(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See https://example.com/path?q=1&x=2, it's great.", f"See {URL_MASK}, it's great."),
        ("http://localhost:8080/x and ftp://files.example.org/a.zip", f"{URL_MASK} and {URL_MASK}"),
        ("More at www.example.com.", f"More at {URL_MASK}."),
        ("WWW.Example.COM/Reviews/123", URL_MASK),
        ("visit imdb.com/title/tt0111161 or blog.example.org!", f"visit {URL_MASK} or {URL_MASK}!"),
        ("my site example.co.uk is up", f"my site {URL_MASK} is up"),
        ("(see https://en.wikipedia.org/wiki/Heat_(1995_film))", f"(see {URL_MASK})"),
        ('"https://example.com/q"', f'"{URL_MASK}"'),
        ("look.at/this/path", URL_MASK),  # an ambiguous TLD is still a URL once it has a path
    ],
)
def test_urls_are_masked_with_or_without_scheme(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


@pytest.mark.parametrize(
    "phone",
    [
        "+1 (555) 123-4567",
        "+1-555-123-4567",
        "(555) 123 4567",
        "555-123-4567",
        "555.123.4567",
        "5551234567",
        "555-1234",  # 7 digits, local format
        "+44 20 7946 0958",
        "020 7946 0958",
        "+49 30 901820",
        "0049 30 901820",
        "+33 1 23 45 67 89",
        "+91 98765 43210",
        "+86 138 0013 8000",
        "+81-3-1234-5678",
        "+61 2 9876 5432",
        "+55 11 91234-5678",
        "+7 495 123-45-67",
    ],
)
def test_international_phone_numbers_are_masked(phone: str) -> None:
    assert mask_pii(f"Call {phone} today") == f"Call {PHONE_MASK} today"
    assert mask_pii(f"({phone})").count(PHONE_MASK) == 1


@pytest.mark.parametrize(
    "text",
    [
        "In 1999 it grossed $1,000,000 and I give it 3.5 stars.",
        "Rated 7/10, maybe 10/10 on a good day.",
        "It ran from 1990-1995 and again 2001 2002.",
        "Released 2004-05-06 (or 12.05.2004 in Europe), 120 minutes long.",
        "Top 250 list, tt0111161, pi is 3.14159265, total 12345.67",
        "The end.It was good. Look.at this, e.g. and i.e. Mr.Smith",
        "Episode 4: 1,234,567 votes, version 1.2.3.4, about 20-30 minutes",
        "Ünïcödé text with no personal data at all",
        "",
    ],
)
def test_ordinary_review_text_is_left_alone(text: str) -> None:
    assert mask_pii(text) == text


def test_everything_in_one_review() -> None:
    text = (
        "Loved it! Write me: fan@example.com, read my blog www.example.org/reviews "
        "or call +44 20 7946 0958. 9/10, better than the 1995 original."
    )
    masked = mask_pii(text)
    assert masked == (
        f"Loved it! Write me: {EMAIL_MASK}, read my blog {URL_MASK} "
        f"or call {PHONE_MASK}. 9/10, better than the 1995 original."
    )
    for secret in ("fan@", "example", "7946"):
        assert secret not in masked


def test_several_numbers_in_a_row_are_not_left_unmasked() -> None:
    masked = mask_pii("numbers: 555 123 4567 555 987 6543 and 1234567890123456789")
    assert not any(c.isdigit() for c in masked), masked


def test_url_containing_an_email_is_masked_completely() -> None:
    masked = mask_pii("http://user@example.com/private")
    assert "user" not in masked and "example" not in masked and "private" not in masked


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "text",
    [
        "1 " * 50_000 + "1x",
        "a." * 50_000 + "@",
        "a@" * 50_000,
        "www." * 25_000,
        "(1" * 50_000,
        "a [at] " * 15_000,
        "x" * 100_000,
    ],
)
def test_pathological_input_is_masked_in_linear_time(text: str) -> None:
    """No catastrophic backtracking: 100 kB of adversarial text finishes (a regex blow-up would hit the timeout)."""
    assert isinstance(mask_pii(text), str)
