import pytest
from pydantic import ValidationError

from bot.config import Settings


def test_env_prefix_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAQBOT_PORT", "8081")
    monkeypatch.setenv("FAQBOT_CORS_ORIGINS", '["https://desk.example.jp"]')
    settings = Settings()
    assert settings.port == 8081 and settings.host == "127.0.0.1"
    assert settings.cors_origins == ["https://desk.example.jp"]
    assert not settings.line_enabled and not settings.slack_enabled


def test_placeholder_secrets_are_refused() -> None:
    with pytest.raises(ValidationError, match="FAQBOT_LINE_CHANNEL_SECRET is a placeholder"):
        Settings(line_channel_secret="changeme")


def test_suggest_threshold_cannot_exceed_answer_threshold() -> None:
    with pytest.raises(ValidationError, match="must not exceed"):
        Settings(answer_threshold=0.3, suggest_threshold=0.5)


def test_channel_is_on_only_with_both_secrets() -> None:
    assert not Settings(slack_signing_secret="s3cr3t-value").slack_enabled
    assert Settings(slack_signing_secret="s3cr3t-value", slack_bot_token="xoxb-123").slack_enabled


@pytest.mark.parametrize("name", ["admin_token", "log_salt"])
def test_admin_token_and_log_salt_refuse_placeholders_and_short_values(name: str) -> None:
    with pytest.raises(ValidationError, match=f"FAQBOT_{name.upper()} is a placeholder"):
        Settings(**{name: "changeme"})
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(**{name: "short-value"})
    assert Settings(**{name: "a-long-enough-random-value"})


def test_log_retention_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        Settings(log_retention_days=0)
