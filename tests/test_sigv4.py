"""SigV4 against AWS's published Signature Version 4 test suite.

The vectors below are AWS's test suite (the ``aws4_testsuite`` requests that botocore and
google-auth also check: key ``AKIDEXAMPLE``, 2011-09-09 23:36:00 UTC, region ``us-east-1``),
plus the temporary-credential ``GetCallerIdentity`` signatures that AWS-sourced workload
identity sends. Each states a request and the ``Authorization`` header AWS computes for it.
The emulator's independent verifier is held to the same vectors.
"""

from __future__ import annotations

import calendar
import time

import pytest

from goth_actors._protocol.sigv4 import AwsCredentials, canonical_query, sign_request
from goth_actors.testing._emulator_aws import verify_sigv4

SUITE_KEYS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = calendar.timegm((2011, 9, 9, 23, 36, 0))
SUITE_DATE = {"date": "Mon, 09 Sep 2011 23:36:00 GMT"}
SUITE_SCOPE = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/host/aws4_request"

# (name, method, url, extra headers, body, signed headers, signature)
SUITE = [
    ("get-vanilla", "GET", "https://host.foo.com", {}, b"", "date;host",
     "b27ccfbfa7df52a200ff74193ca6e32d4b48b8856fab7ebf1c595d0670a7e470"),
    ("get-relative-relative", "GET", "https://host.foo.com/foo/bar/../..", {}, b"",
     "date;host", "b27ccfbfa7df52a200ff74193ca6e32d4b48b8856fab7ebf1c595d0670a7e470"),
    ("get-slash-dot-slash", "GET", "https://host.foo.com/./", {}, b"", "date;host",
     "b27ccfbfa7df52a200ff74193ca6e32d4b48b8856fab7ebf1c595d0670a7e470"),
    ("get-slash-pointless-dot", "GET", "https://host.foo.com/./foo", {}, b"", "date;host",
     "910e4d6c9abafaf87898e1eb4c929135782ea25bb0279703146455745391e63a"),
    ("get-utf8", "GET", "https://host.foo.com/%E1%88%B4", {}, b"", "date;host",
     "8d6634c189aa8c75c2e51e106b6b5121bed103fdb351f7d7d4381c738823af74"),
    ("get-vanilla-query-order-key-case", "GET", "https://host.foo.com/?foo=Zoo&foo=aha", {},
     b"", "date;host", "be7148d34ebccdc6423b19085378aa0bee970bdc61d144bd1a8c48c33079ab09"),
    ("get-vanilla-query-order-value", "GET", "https://host.foo.com/?foo=b&foo=a", {}, b"",
     "date;host", "feb926e49e382bec75c9d7dcb2a1b6dc8aa50ca43c25d2bc51143768c0875acc"),
    ("get-vanilla-ut8-query", "GET", "https://host.foo.com/?\u1234=bar", {}, b"", "date;host",
     "6fb359e9a05394cc7074e0feb42573a2601abc0c869a953e8c5c12e4e01f1a8c"),
    ("post-header-key-sort", "POST", "https://host.foo.com/", {"ZOO": "zoobar"}, b"",
     "date;host;zoo", "b7a95a52518abbca0964a999a880429ab734f35ebbf1235bd79a5de87756dc4a"),
    ("post-header-value-case", "POST", "https://host.foo.com/", {"zoo": "ZOOBAR"}, b"",
     "date;host;zoo", "273313af9d0c265c531e11db70bbd653f3ba074c1009239e8559d3987039cad7"),
    ("get-header-value-trim", "POST", "https://host.foo.com/", {"p": "phfft"}, b"",
     "date;host;p", "debf546796015d6f6ded8626f5ce98597c33b47b9164cf6b17b4642036fcb592"),
    ("post-x-www-form-urlencoded", "POST", "https://host.foo.com/",
     {"Content-Type": "application/x-www-form-urlencoded"}, b"foo=bar",
     "content-type;date;host",
     "5a15b22cf462f047318703b92e6f4f38884e4a7ab7b1d6426ca46a8bd1c26cbc"),
    ("post-vanilla-query", "POST", "https://host.foo.com/?foo=bar", {}, b"", "date;host",
     "b6e3b79003ce0743a491606ba1035a804593b0efb1e20a11cba83f8c25a57a92"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "url", "headers", "body", "signed", "signature"),
    [pytest.param(*case[1:], id=case[0]) for case in SUITE],
)
def test_the_signature_is_awss_for_each_request_of_the_test_suite(
    method: str, url: str, headers: dict[str, str], body: bytes, signed: str, signature: str
) -> None:
    result = sign_request(
        method=method,
        url=url,
        region="us-east-1",
        credentials=SUITE_KEYS,
        headers={**SUITE_DATE, **headers},
        body=body,
        now=SUITE_TIME,
    )
    expected = f"{SUITE_SCOPE}, SignedHeaders={signed}, Signature={signature}"
    assert result["Authorization"] == expected
    assert result["host"] == "host.foo.com"
    assert "x-amz-date" not in result  # the date header is the signed time


# Temporary credentials, as an EC2 instance's role gives them (AWS's documented examples).
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION = (
    "AQoEXAMPLEH4aoAH0gNCAPyJxz4BlCFFxWNE1OPTgk5TthT+FvwqnKwRcOIfrRh3c/LTo6UDdyJwOOvEVPvLXCrrrUtd"
    "nniCEXAMPLE/IvU1dYUg2RVAJBanLiHb4IgRmpRV3zrkuWJOgQs8IZZaIv2BXIa2R4OlgkBN9bkUDNCJiBeb/AXlzB"
    "Bko7b15fjrBs2+cTQtpZ3CYWFXG8C5zqx37wnOE49mRl/+OtkIKGO7fAE"
)
WHEN = calendar.timegm((2020, 8, 11, 6, 55, 22))
CALLER_IDENTITY = "https://sts.us-east-2.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"


@pytest.mark.parametrize(
    ("credentials", "signed", "signature"),
    [
        (
            AwsCredentials(ACCESS_KEY_ID, SECRET, SESSION),
            "host;x-amz-date;x-amz-security-token",
            "596aa990b792d763465d73703e684ca273c45536c6d322c31be01a41d02e5b60",
        ),
        (
            AwsCredentials(ACCESS_KEY_ID, SECRET),
            "host;x-amz-date",
            "9e722e5b7bfa163447e2a14df118b45ebd283c5aea72019bdf921d6e7dc01a9a",
        ),
    ],
    ids=["temporary", "long-term"],
)
def test_a_get_caller_identity_request_is_signed_as_aws_signs_it(
    credentials: AwsCredentials, signed: str, signature: str
) -> None:
    result = sign_request(
        method="POST", url=CALLER_IDENTITY, region="us-east-2", credentials=credentials, now=WHEN
    )
    assert result["Authorization"] == (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20200811/us-east-2/sts/aws4_request, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    assert result["x-amz-date"] == "20200811T065522Z"
    assert result.get("x-amz-security-token") == credentials.session_token


def test_extra_headers_and_a_body_are_signed_with_a_session_token() -> None:
    body = (
        b'{"KeySchema":[{"KeyType":"HASH","AttributeName":"Id"}],"TableName":"TestTable",'
        b'"AttributeDefinitions":[{"AttributeName":"Id","AttributeType":"S"}],'
        b'"ProvisionedThroughput":{"WriteCapacityUnits":5,"ReadCapacityUnits":5}}'
    )
    result = sign_request(
        method="POST",
        url="https://dynamodb.us-east-2.amazonaws.com/",
        region="us-east-2",
        credentials=AwsCredentials(ACCESS_KEY_ID, SECRET, SESSION),
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "x-amz-target": "DynamoDB_20120810.CreateTable",
        },
        body=body,
        now=WHEN,
    )
    assert result["Authorization"].endswith(
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, "
        "Signature=eb8bce0e63654bba672d4a8acb07e72d69210c1797d56ce024dbbc31beb2a2c7"
    )


def test_the_emulators_independent_verifier_accepts_exactly_the_suites_signatures() -> None:
    for name, method, url, headers, body, _, _ in SUITE:
        sent = sign_request(
            method=method,
            url=url,
            region="us-east-1",
            credentials=SUITE_KEYS,
            headers={**SUITE_DATE, **headers},
            body=body,
            now=SUITE_TIME,
        )
        assert verify_sigv4(method, url, sent, body, SUITE_KEYS.secret_access_key), name
        tampered = {**sent, "host": "other.foo.com"}
        assert not verify_sigv4(method, url, tampered, body, SUITE_KEYS.secret_access_key)
        assert not verify_sigv4(method, url, sent, body + b"x", SUITE_KEYS.secret_access_key)


def test_the_canonical_query_encodes_and_sorts_names_and_values() -> None:
    assert canonical_query("") == ""
    assert canonical_query("Version=2011-06-15&Action=GetCallerIdentity") == (
        "Action=GetCallerIdentity&Version=2011-06-15"
    )
    assert canonical_query("a=%7E~&b=c%2Fd") == "a=~~&b=c%2Fd"


def test_the_secret_never_shows_in_a_repr() -> None:
    keys = AwsCredentials(ACCESS_KEY_ID, SECRET, SESSION)
    assert SECRET not in repr(keys)
    assert SESSION not in repr(keys)
    assert sign_request(method="POST", url=CALLER_IDENTITY, region="us-east-2", credentials=keys)[
        "x-amz-date"
    ].startswith(time.strftime("%Y", time.gmtime()))
