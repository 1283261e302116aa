"""Secret masking of text, streams and log records; provider masking commands."""

from __future__ import annotations

import io
import logging

import pytest

from promoter.report import masking


def test_known_secret_values_are_masked_longest_first():
    m = masking.Masker(["abcdef123456", "abcdef123456-extended"])
    assert m.mask("a abcdef123456-extended b abcdef123456 c") == "a *** b *** c"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("https://user:hunter2pass@mlflow.example/api", "https://user:***@mlflow.example/api"),
        ("postgresql://ml:pw0rd!x@db:5432/mlflow", "postgresql://ml:***@db:5432/mlflow"),
        ("Authorization: Bearer eyJhbGciOi.xyz", "Authorization: Bearer ***"),
        ("https://mlflow.example/#/experiments/1/runs/abc", "https://mlflow.example/#/experiments/1/runs/abc"),
        ("no secrets here: 0.81 vs 0.79", "no secrets here: 0.81 vs 0.79"),
    ],
)
def test_url_passwords_and_auth_headers_are_masked_without_knowing_them(text, expected):
    assert masking.Masker().mask(text) == expected


def test_secrets_from_env_by_name_and_known_variable():
    env = {
        "GITHUB_TOKEN": "ghs_0123456789",
        "PROD_MLFLOW_TRACKING_TOKEN": "tok-prod-0001",
        "DB_PASSWORD": "correct-horse",
        "SYSTEM_ACCESSTOKEN": "azdo-000111",
        "SOME_FLAG": "true",
        "MY_TOKEN": "short",
        "GITHUB_REF": "refs/heads/main",
    }
    found = set(masking.secrets_from_env(env))
    assert found == {"ghs_0123456789", "tok-prod-0001", "correct-horse", "azdo-000111"}


def test_masked_stream_catches_a_secret_split_across_writes():
    sink = io.StringIO()
    out = masking.masked_stream(sink, masking.Masker(["s3cr3t-value"]))
    out.write("token=s3cr")
    out.write("3t-value ok\npartial s3cr3t-value")
    assert sink.getvalue() == "token=*** ok\n"
    out.flush()
    assert sink.getvalue() == "token=*** ok\npartial ***"


def test_logging_filter_masks_message_and_args():
    sink = io.StringIO()
    logger = logging.getLogger("promote-test-masking")
    handler = logging.StreamHandler(sink)
    handler.addFilter(masking.MaskingFilter(masking.Masker(["pat-987654321"])))
    logger.addHandler(handler)
    try:
        logger.warning("calling API with %s", "pat-987654321")
    finally:
        logger.removeHandler(handler)
    assert sink.getvalue() == "calling API with ***\n"


def test_mask_commands_per_provider():
    assert masking.mask_commands(["derived-abcdef"], "github") == ["::add-mask::derived-abcdef"]
    assert masking.mask_commands(["derived-abcdef"], "azure") == ["##vso[task.setsecret]derived-abcdef"]
    assert masking.mask_commands(["derived-abcdef"], "local") == []
    assert masking.mask_commands(["abc", ""], "github") == []  # too short to mask
    assert masking.mask_commands(["line-one-xx\nline-two-yy"], "github") == [
        "::add-mask::line-one-xx",
        "::add-mask::line-two-yy",
    ]
    out = io.StringIO()
    assert masking.announce(["derived-abcdef"], "azure", out) == 1
    assert out.getvalue() == "##vso[task.setsecret]derived-abcdef\n"
