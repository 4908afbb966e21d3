"""Settings: read from the environment once, into one frozen object that is passed in."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_DATABASE_URL", "DEFAULT_POLICY_DIR", "MAX_CHECKPOINT_SECONDS", "Settings"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/hub.db"
DEFAULT_POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
MAX_CHECKPOINT_SECONDS = 86_400  # witnesses get at least one checkpoint a day


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    # model.conf, policy.csv and catalog.csv; reloaded on SIGHUP.
    policy_dir: Path = DEFAULT_POLICY_DIR
    # Larger request bodies are refused before they are parsed.
    max_request_bytes: int = 1_000_000
    # GraphiQL for developers at GET /graphql; deployments may switch it off.
    graphiql: bool = True
    # Reads answered from compiled plans (hub/compiled/); off, every request goes through
    # strawberry's resolvers, which give the same answers and access records, slower.
    compiled_reads: bool = True
    # Department and enterprise systems may run only documents registered for them (`hub
    # documents register`); developer credentials, auditors and admins keep free queries.
    trusted_documents: bool = False
    # JWTs from an identity provider: an HMAC secret, or a PEM public key (text or file).
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_public_key: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # Ed25519 key (PEM) that signs access-log checkpoints; never committed.
    audit_signing_key: Path = Path("var/audit-signing-key.pem")
    # While serving, sign the log's head this often (0: never) into checkpoint_dir, where
    # witnesses collect the files.
    checkpoint_seconds: int = 0
    checkpoint_dir: Path = Path("var/checkpoints")
    # The server log: "text" (uvicorn's style) or "json" (a JSON object per line).
    log_format: str = "text"
    # How often the feed listener reads the feed's head on SQLite (on PostgreSQL it hears
    # of each publish at once and reads the head every five of these), in seconds.
    feed_poll_seconds: float = 1.0
    # Bounded waits (hub/db.py): no statement runs longer, no lock is waited for longer, and
    # no more requests wait for a database connection at once; past any of them the request
    # ends with 503 SERVICE_UNAVAILABLE and Retry-After, having served nothing.
    statement_timeout_seconds: float = 10.0
    lock_timeout_seconds: float = 4.0
    database_waiting: int = 500
    # Working days an owner department has to decide a share request.
    share_decision_days: int = 10
    # The most a request may cost: the fields it would resolve, lists multiplied out
    # (hub/schema/cost.py). The bench's 100-enterprise dossier costs 30,402 and the widest
    # dossier in the tests 40,504; thirty aliases of changes(first: 500) with a few fields of
    # each record cost 90,060 and are refused (they took 10.8 s in the security review).
    query_cost_budget: int = 50_000
    # Per authenticated client and process (hub/throttle.py): requests in flight at once;
    # cost per second with its burst (a dossier of 100 enterprises a second, six at once; a
    # `{ __typename }` costs 1; a process serves three to seven dossiers a second on the
    # bench machine); live subscriptions.
    client_concurrency: int = 16
    client_cost_per_second: int = 30_000
    client_cost_burst: int = 200_000
    client_subscriptions: int = 20
    # For the whole process: the cost of the requests running at once (one dossier and
    # lighter requests beside it); heavier ones wait their turn, which keeps memory near its
    # baseline and the event loop free for everyone else.
    cost_in_flight: int = 50_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read ``HUB_*`` variables; anything unset keeps its default."""
        defaults = cls()
        max_request_bytes = environ.get("HUB_MAX_REQUEST_BYTES", str(defaults.max_request_bytes))
        if not max_request_bytes.isdigit():
            raise ValueError(
                f"HUB_MAX_REQUEST_BYTES must be a whole number of bytes, not {max_request_bytes!r}"
            )
        feed_poll_seconds = _seconds(
            environ, "HUB_FEED_POLL_SECONDS", defaults.feed_poll_seconds, 0.05, 60
        )
        budget = _whole(environ, "HUB_QUERY_COST_BUDGET", defaults.query_cost_budget)
        burst = _whole(environ, "HUB_CLIENT_COST_BURST", defaults.client_cost_burst)
        if burst < budget:
            raise ValueError(
                f"HUB_CLIENT_COST_BURST ({burst}) must be at least HUB_QUERY_COST_BUDGET "
                f"({budget}), or a request within the budget could never be admitted"
            )
        days = environ.get("HUB_SHARE_DECISION_DAYS", str(defaults.share_decision_days))
        if not days.isdigit() or not 1 <= int(days) <= 60:
            raise ValueError(f"HUB_SHARE_DECISION_DAYS must be 1 to 60 working days, not {days!r}")
        every = environ.get("HUB_CHECKPOINT_SECONDS", str(defaults.checkpoint_seconds))
        if not (every.isascii() and every.isdigit()) or int(every) > MAX_CHECKPOINT_SECONDS:
            raise ValueError(
                "HUB_CHECKPOINT_SECONDS must be 0 (off) or whole seconds up to "
                f"{MAX_CHECKPOINT_SECONDS}, not {every!r}"
            )
        log_format = environ.get("HUB_LOG_FORMAT", defaults.log_format)
        if log_format not in ("text", "json"):
            raise ValueError(f"HUB_LOG_FORMAT must be text or json, not {log_format!r}")
        secret = environ.get("HUB_JWT_SECRET") or None
        public_key = environ.get("HUB_JWT_PUBLIC_KEY") or None
        if secret and public_key:
            raise ValueError("set HUB_JWT_SECRET or HUB_JWT_PUBLIC_KEY, not both")
        if secret and secret.lstrip().startswith("-----BEGIN"):
            raise ValueError(
                "HUB_JWT_SECRET holds a PEM key; put public keys in HUB_JWT_PUBLIC_KEY"
            )
        if public_key and not public_key.lstrip().startswith("-----BEGIN"):
            try:
                public_key = Path(public_key).read_text(encoding="utf-8")
            except OSError as error:
                raise ValueError(
                    f"HUB_JWT_PUBLIC_KEY is neither a PEM key nor a readable file: {error}"
                ) from None
        return cls(
            database_url=environ.get("HUB_DATABASE_URL", defaults.database_url),
            policy_dir=Path(environ.get("HUB_POLICY_DIR", defaults.policy_dir)),
            max_request_bytes=int(max_request_bytes),
            graphiql=_on(environ, "HUB_GRAPHIQL"),
            compiled_reads=_on(environ, "HUB_COMPILED_READS"),
            trusted_documents=_on(environ, "HUB_TRUSTED_DOCUMENTS", default=False),
            jwt_secret=secret,
            jwt_public_key=public_key,
            jwt_audience=environ.get("HUB_JWT_AUDIENCE") or None,
            jwt_issuer=environ.get("HUB_JWT_ISSUER") or None,
            audit_signing_key=Path(
                environ.get("HUB_AUDIT_SIGNING_KEY", defaults.audit_signing_key)
            ),
            checkpoint_seconds=int(every),
            checkpoint_dir=Path(environ.get("HUB_CHECKPOINT_DIR", defaults.checkpoint_dir)),
            log_format=log_format,
            feed_poll_seconds=feed_poll_seconds,
            statement_timeout_seconds=_seconds(
                environ,
                "HUB_STATEMENT_TIMEOUT_SECONDS",
                defaults.statement_timeout_seconds,
                0.1,
                3600,
            ),
            lock_timeout_seconds=_seconds(
                environ, "HUB_LOCK_TIMEOUT_SECONDS", defaults.lock_timeout_seconds, 0.1, 600
            ),
            database_waiting=_whole(environ, "HUB_DATABASE_WAITING", defaults.database_waiting),
            share_decision_days=int(days),
            query_cost_budget=budget,
            client_concurrency=_whole(
                environ, "HUB_CLIENT_CONCURRENCY", defaults.client_concurrency
            ),
            client_cost_per_second=_whole(
                environ, "HUB_CLIENT_COST_PER_SECOND", defaults.client_cost_per_second
            ),
            client_cost_burst=burst,
            client_subscriptions=_whole(
                environ, "HUB_CLIENT_SUBSCRIPTIONS", defaults.client_subscriptions
            ),
            cost_in_flight=_whole(environ, "HUB_COST_IN_FLIGHT", defaults.cost_in_flight),
        )

    def sqlite_path(self) -> Path | None:
        """The file of an SQLite database URL (None for other databases or in-memory)."""
        prefix = "sqlite+aiosqlite:///"
        path = self.database_url.removeprefix(prefix)
        if path == self.database_url or path in {"", ":memory:"}:
            return None
        return Path(path)


def _on(environ: Mapping[str, str], name: str, *, default: bool = True) -> bool:
    """A switch: on unless set to 0, false, no or off; one that is off by default is on
    only when set to 1, true, yes or on (ValueError for anything else: a misspelt setting
    must not leave a safeguard off)."""
    value = environ.get(name, "").strip().lower()
    if default:
        return value not in {"0", "false", "no", "off"}
    if value not in {"", "0", "false", "no", "off", "1", "true", "yes", "on"}:
        raise ValueError(f"{name} must be 1 (on) or 0 (off), not {value!r}")
    return value in {"1", "true", "yes", "on"}


def _seconds(
    environ: Mapping[str, str], name: str, default: float, low: float, high: float
) -> float:
    """Seconds from the environment within [low, high], or ValueError naming the variable."""
    said = environ.get(name, str(default))
    try:
        seconds = float(said)
    except ValueError:
        seconds = math.nan
    if not low <= seconds <= high:
        raise ValueError(f"{name} must be seconds from {low:g} to {high:g}, not {said!r}")
    return seconds


def _whole(environ: Mapping[str, str], name: str, default: int) -> int:
    """A positive whole number from the environment, or ValueError naming the variable."""
    value = environ.get(name, str(default)).strip()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a whole number from 1, not {environ.get(name)!r}")
    return int(value)
