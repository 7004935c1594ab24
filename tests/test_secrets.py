"""masking: every password is masked or scrubbed before anything is shown."""

from __future__ import annotations

import uuid

import pytest

from alembic_deploy.masking import mask_url, register, register_url, scrub


def _secret(prefix: str = "s3cr3t") -> str:
    """A fresh secret per test: the registry is process-wide and only grows."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:hunter22@db:5432/app", "postgresql://app:***@db:5432/app"),
        ("postgresql+psycopg://app:p%40ss%25w@db/app", "postgresql+psycopg://app:***@db/app"),
        ("mysql+pymysql://root:pw@127.0.0.1:3306/x?charset=utf8mb4", "mysql+pymysql://root:***@127.0.0.1:3306/x?charset=utf8mb4"),
        ("redis://:token@cache/0", "redis://:***@cache/0"),
        ("postgresql://app@db/app", "postgresql://app@db/app"),
        ("sqlite:////var/lib/app.db", "sqlite:////var/lib/app.db"),
    ],
)
def test_mask_url_hides_only_the_password(url, masked):
    assert mask_url(url) == masked


def test_mask_url_masks_every_url_inside_a_text():
    text = "primary postgresql://a:one1@h1/db failed, replica postgresql://b:two2@h2/db too"
    assert mask_url(text) == "primary postgresql://a:***@h1/db failed, replica postgresql://b:***@h2/db too"


@pytest.mark.parametrize(
    "fragment",
    [
        "password=hunter22",
        "PASSWORD = hunter22",
        "passwd: hunter22",
        "pwd='hunter 22'",
        'password="hunter 22"',
    ],
)
def test_scrub_removes_key_value_passwords_drivers_print(fragment):
    out = scrub(f"connect(host=db {fragment} dbname=app) failed")
    assert "hunter" not in out
    assert "***" in out and out.endswith("dbname=app) failed")


def test_scrub_keeps_mysqls_using_password_yes_readable():
    message = "(1045, \"Access denied for user 'app'@'10.0.0.5' (using password: YES)\")"
    assert scrub(message) == message


def test_scrub_removes_a_registered_secret_anywhere():
    token = _secret("tok")
    register(token)
    assert scrub(f"the token was {token}; again:{token}.") == "the token was ***; again:***."


def test_register_ignores_secrets_too_short_to_scrub_safely():
    register("ab")
    assert scrub("a tab and a cab") == "a tab and a cab"


def test_register_url_scrubs_both_the_quoted_and_the_unquoted_password():
    raw = _secret("p@ss%word")
    quoted = raw.replace("%", "%25").replace("@", "%40")
    register_url(f"postgresql://app:{quoted}@db/app")
    out = scrub(f"driver said: bad password {raw!r} (from {quoted})")
    assert raw not in out and quoted not in out
    assert out == "driver said: bad password '***' (from ***)"


def test_register_url_without_a_password_registers_nothing():
    register_url("postgresql://app@db/app")
    register_url("not a url at all")
    register_url(None)
    assert scrub("app db") == "app db"


def test_scrub_passes_empty_text_through():
    assert scrub("") == ""
