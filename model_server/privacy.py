"""Masking of personal data in request text before it is written anywhere (the opt-in request log).

Text sent to a model is free text (reviews, here): people paste their e-mail address, a link to their blog, a phone
number. The request log keeps text for drift monitoring, so these are replaced by ``[EMAIL]``, ``[URL]`` and
``[PHONE]``. The rules lean towards masking (any run of 7 or more digits is treated as a phone number) but leave what
such text is full of: years and year ranges, ratings like 7/10, dates, decimals, money and counts with thousands
separators.
"""

from __future__ import annotations

import re

EMAIL_MASK = "[EMAIL]"
URL_MASK = "[URL]"
PHONE_MASK = "[PHONE]"

_EMAIL = re.compile(
    r"(?<![\w.%+-])"
    r"[\w.%+'-]+"  # local part (unicode letters allowed)
    r"(?:@|\s*[\[(]\s*at\s*[\])]\s*)"  # @, or the obfuscated [at] / (at)
    r"[\w-]+(?:(?:\.|\s*[\[(]\s*dot\s*[\])]\s*)[\w-]+)*"
    r"(?:\.|\s*[\[(]\s*dot\s*[\])]\s*)[A-Za-z]{2,24}\b",
    re.IGNORECASE,
)

# Common generic and country TLDs. Two-letter codes that are everyday words ("it", "in", "at", "me", "no", "is",
# "to", "be", "us", "my", "so", "am") are left out so that "the end.It was" is not taken for a host name; such hosts
# are still masked when written with a scheme or "www.".
_TLDS = (
    "com|org|net|edu|gov|mil|int|info|biz|io|co|ai|app|dev|xyz|online|site|website|blog|news|tv|fm|ly|gg|tk|"
    "uk|de|fr|es|nl|ch|au|ca|jp|cn|ru|br|mx|ar|nz|za|se|dk|fi|pl|pt|gr|cz|hu|ro|tr|il|ie|kr|tw|hk|sg|eu|be|"
    "at|cl|pe|ua|vn|id|ph|my|th|ae|sa|eg|ng|ke"
)
_COMMON_WORD_TLDS = {"at", "be", "my", "id"}
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_URL = re.compile(
    r"(?:"
    r"\b(?:https?|ftps?|file|sftp)://[^\s<>\"']+"  # with a scheme
    r"|\bwww\d{0,3}\.[^\s<>\"']+"  # www.example.com/...
    rf"|(?<![\w@.-])(?:{_HOST_LABEL}\.)+(?P<tld>{_TLDS})(?![\w-])(?::\d{{1,5}})?(?:/[^\s<>\"']*)?"  # example.com
    r")",
    re.IGNORECASE,
)
_TRAILING_PUNCTUATION = ".,;:!?)]}'\""

_PHONE = re.compile(
    r"(?<![\w+/.,:$€£¥#-])"  # not glued to a word, a decimal, a ratio, money or another number
    r"(?:\+|00)?"
    r"(?:\(\d{1,5}\)[ \t.-]?)?"
    r"\d[\d \t().-]{5,}\d"
    r"(?![\w/%]|[.,]\d)"
)
_YEAR = re.compile(r"(?:1[89]|20)\d\d")
_DATE = re.compile(r"(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./](?:\d{4}|\d{2}))")


def _mask_url(m: re.Match) -> str:
    text = m.group(0)
    tld = m.group("tld")
    if tld is not None and tld.lower() in _COMMON_WORD_TLDS and "/" not in text:
        return text  # "look.at" and friends: too ambiguous without a path
    stripped = text.rstrip(_TRAILING_PUNCTUATION)
    # keep a closing bracket that belongs to the URL, e.g. https://en.wikipedia.org/wiki/Heat_(1995_film)
    while stripped.count("(") > stripped.count(")") and len(stripped) < len(text) and text[len(stripped)] == ")":
        stripped += ")"
    return URL_MASK + text[len(stripped) :]


def _is_phone(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    if digits < 7:
        return False  # longer than E.164's 15 digits: several numbers in a row, or an account number: mask too
    if _DATE.fullmatch(candidate):
        return False
    groups = re.findall(r"\d+", candidate)
    international = candidate.startswith(("+", "00", "("))
    if not international:
        if all(len(g) == 4 and _YEAR.fullmatch(g) for g in groups):
            return False  # "1990-1995", "2001 2002"
        separators = re.findall(r"[^\d]+", candidate)
        if len(groups) == 2 and separators == ["."] and len(groups[1]) != 4:
            return False  # a decimal number such as 12345.67
    return True


def _mask_phone(m: re.Match) -> str:
    text = m.group(0)
    if "(" in text or ")" in text:
        # A bracket the number does not use belongs to the surrounding prose: keep it outside the mask.
        core = text.strip("()") if text.count("(") != text.count(")") else text
        if core != text:
            lead = text[: text.index(core)]
            return lead + (PHONE_MASK if _is_phone(core) else core) + text[len(lead) + len(core) :]
    return PHONE_MASK if _is_phone(text) else text


def mask_pii(text: str) -> str:
    """Replace e-mail addresses, URLs and phone numbers (e-mails first: a URL may contain one, and vice versa)."""
    if not text:
        return text
    text = _EMAIL.sub(EMAIL_MASK, text)
    text = _URL.sub(_mask_url, text)
    return _PHONE.sub(_mask_phone, text)
