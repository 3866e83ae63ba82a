"""AutoBot settings: every value comes from the environment, with its default inline.

Malformed values fail loudly at start-up (ImproperlyConfigured naming the variable) rather
than silently falling back to a default.
"""

import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from autobot import redisconf

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """A boolean that refuses anything but the usual spellings (django-environ accepts any)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no, on/off)")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}")
    return value


VAR_DIR = Path(env.str("AUTOBOT_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """AUTOBOT_SECRET_KEY, or a key generated once and kept in var/secret_key (mode 0600)."""
    key = os.environ.get("AUTOBOT_SECRET_KEY")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        # Write a complete temp file, then link it into place: parallel first starts (several
        # workers) all end up with the one key, and none ever reads a half-written file.
        tmp = VAR_DIR / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("AUTOBOT_DEBUG", False)
ALLOWED_HOSTS = env.list("AUTOBOT_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("AUTOBOT_CSRF_TRUSTED_ORIGINS", default=[])
VERSION = "0.1.0"

INSTALLED_APPS = [
    "daphne",  # first, so that runserver serves ASGI
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "ninja",  # serves Swagger UI from its own static files, not a CDN
    "autobot",
    "terminal",
    "knowledge",
    "chat",
    "files",
    "agents",
    "interop",
]

# Django's own middleware, with those whose hooks are pure in-memory work wrapped to run inline
# instead of through two thread hops each (autobot/middleware.py).
MIDDLEWARE = [
    "autobot.middleware.RequestContextMiddleware",
    "autobot.csp.ContentSecurityPolicyMiddleware",
    "autobot.middleware.SecurityMiddleware",
    "autobot.middleware.StaticFilesMiddleware",
    "autobot.middleware.SessionMiddleware",
    "autobot.middleware.CommonMiddleware",
    "autobot.middleware.CsrfViewMiddleware",
    "autobot.middleware.AuthenticationMiddleware",
    "autobot.middleware.MessageMiddleware",
    "autobot.middleware.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "autobot.urls"
ASGI_APPLICATION = "autobot.asgi.application"

TEMPLATES = [
    {
        # Django's, without the reference cycle each rendering left (autobot/templating.py).
        "BACKEND": "autobot.templating.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # `csrf_token` masked in one random read, in place of Django's (autobot/csrf.py).
                "autobot.csrf.context_processor",
                # `nav`, `nav_user`: base.html's nav markup and the user's facts, worked out once (autobot/nav.py).
                "autobot.nav.context_processor",
            ],
            # `{% extends %}` without a walk of the parent template on every rendering; `{% url %}`
            # and `{% static %}` rendering what they rendered before (no `{% load static %}`).
            "builtins": ["autobot.templating", "autobot.static_tags"],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'autobot.sqlite3'}"),
}
if DATABASES["default"].get("ENGINE") not in ("django.db.backends.sqlite3", "django.db.backends.postgresql"):
    raise ImproperlyConfigured(
        f"DATABASE_URL={os.environ.get('DATABASE_URL')!r}: use sqlite:///path or postgres://user@host/db")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at BEGIN so two
    # writers queue on busy_timeout instead of failing with "database is locked" mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# Requests and background tasks run their sync ORM work on a few long-lived threads
# (autobot/lanes.py), so a connection can outlive one request; Django checks it before reuse.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("AUTOBOT_DB_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Two, not more: every further lane adds threads fighting for the GIL (docs/performance.md, "Eighth round").
SYNC_THREADS = env_int("AUTOBOT_SYNC_THREADS", 2, minimum=1)
# Log (with the stuck stack) anything that holds the event loop longer than this; 0 = off.
LOOP_WATCHDOG_MS = env_int("AUTOBOT_LOOP_WATCHDOG_MS", 100)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
# Read timeout of the channel layer's Redis connections: it must outlast the layer's 5 s blocking
# read, or every idle socket and bus reader dies (autobot/redisconf.py says why; refused below).
REDIS_SOCKET_TIMEOUT = env_float("AUTOBOT_REDIS_SOCKET_TIMEOUT", 30.0, minimum=0.1)
# How often each worker checks that the layer's Redis still holds its groups (autobot/layerwatch.py).
LAYER_WATCH_SECONDS = env_float("AUTOBOT_LAYER_WATCH_SECONDS", 2.0, minimum=0.05)
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://")
    try:
        CHANNEL_LAYERS = {"default": redisconf.channel_layer_config(REDIS_URL, socket_timeout=REDIS_SOCKET_TIMEOUT)}
    except redisconf.RedisConfigError as exc:
        raise ImproperlyConfigured(str(exc)) from None
else:
    # One process: channels' in-memory layer, cleaning expired messages once a second (autobot/layers.py).
    CHANNEL_LAYERS = {"default": {"BACKEND": "autobot.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
# Failed sign-ins allowed per username (and, times five, per client address) within the window.
LOGIN_MAX_FAILURES = env_int("AUTOBOT_LOGIN_MAX_FAILURES", 10, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("AUTOBOT_LOGIN_FAILURE_WINDOW", 900, minimum=1)
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# Django's database sessions, read with SQL compiled once (autobot/sessions.py): same table and format.
SESSION_ENGINE = "autobot.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("AUTOBOT_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Largest request body Django reads (autobot/bodylimit.py; never below a document upload's limit).
# Files-area uploads stream past it, under their own limits.
MAX_REQUEST_BYTES = env_int("AUTOBOT_MAX_REQUEST_BYTES", 32 * 1024 * 1024, minimum=1024)
# Behind TLS (docs/security.md#headers): HSTS and the http→https redirect. Off by default, since
# `make run` serves plain http on loopback and HSTS cannot be taken back once a browser saw it.
SECURE_HSTS_SECONDS = env_int("AUTOBOT_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("AUTOBOT_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("AUTOBOT_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("AUTOBOT_SSL_REDIRECT", False)
# A TLS-terminating proxy tells us the original scheme; trust it only when one is in front (and
# strips the header from clients), or a client could claim https itself.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("AUTOBOT_TRUST_X_FORWARDED_PROTO", False) else None
)
# Django's checks look for its own middleware by dotted path; ours are subclasses run inline
# (autobot/middleware.py), so autobot/checks.py runs those checks against them instead.
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Django's, with each static URL worked out once (autobot/storage.py).
    "staticfiles": {"BACKEND": "autobot.storage.StaticFilesStorage"},
}
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the source folders too, so a server started without collectstatic
# (tests, a quick `daphne`) still has its CSS and JS.
WHITENOISE_USE_FINDERS = True

# API tokens and the audit chain.
API_TOKEN_DEFAULT_DAYS = env_int("AUTOBOT_API_TOKEN_DAYS", 0)  # 0: tokens don't expire
# An open WebSocket's credentials (token, or session) and what its consumer needs are checked
# again this often: a revoked or expired token, a signed-out session or a deactivated user closes
# it with 4401, a permission gone with 4403. The backstop: changes that take access away nudge the
# user's sockets to check at once (autobot/revocation.py).
WS_REAUTH_SECONDS = env_float("AUTOBOT_WS_REAUTH_SECONDS", 60.0, minimum=0.01)
AUDIT_KEY = env.str("AUTOBOT_AUDIT_KEY", default="") or f"audit:{SECRET_KEY}"
METRICS_PUBLIC = env_bool("AUTOBOT_METRICS_PUBLIC", False)
HEALTH_TIMEOUT_SECONDS = env_float("AUTOBOT_HEALTH_TIMEOUT", 2.0, minimum=0.1)

# Files area shared by the file manager and the terminal's RESTRICTED working directory.
FILES_ROOT = Path(env.str("AUTOBOT_FILES_ROOT", default=str(VAR_DIR / "files")))
# Leftovers of interrupted uploads are removed at start-up once unmodified for this long (those of a
# process on this host that no longer runs, at once): a live upload writes to its file all the time.
FILES_PARTIAL_MAX_AGE_SECONDS = env_int("AUTOBOT_FILES_PARTIAL_MAX_AGE", 6 * 3600, minimum=60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("AUTOBOT_LOG_LEVEL", default="INFO")},
}

# --- terminal ---
TERMINAL_RECONNECT_SECONDS = env_float("AUTOBOT_TERMINAL_RECONNECT_SECONDS", 900.0)  # detached grace (tab closed)
TERMINAL_IDLE_SECONDS = env_float("AUTOBOT_TERMINAL_IDLE_SECONDS", 3600.0, minimum=1.0)
TERMINAL_MAX_SESSIONS_PER_USER = env_int("AUTOBOT_TERMINAL_MAX_SESSIONS_PER_USER", 5, minimum=1)
TERMINAL_REPLAY_CHARS = env_int("AUTOBOT_TERMINAL_REPLAY_CHARS", 256 * 1024, minimum=1024)  # replayed on reconnect
TERMINAL_MAX_FRAME_BYTES = env_int("AUTOBOT_TERMINAL_MAX_FRAME_BYTES", 64 * 1024, minimum=1024)  # client frames
TERMINAL_RECORDINGS_DIR = Path(env.str("AUTOBOT_TERMINAL_RECORDINGS_DIR", default=str(VAR_DIR / "recordings")))
TERMINAL_RECORD_INPUT = env_bool("AUTOBOT_TERMINAL_RECORD_INPUT", False)
TERMINAL_RECORDING_MAX_BYTES = env_int("AUTOBOT_TERMINAL_RECORDING_MAX_BYTES", 50 * 1024 * 1024, minimum=1024)
TERMINAL_EXECUTE_TIMEOUT = env_float("AUTOBOT_TERMINAL_EXECUTE_TIMEOUT", 30.0, minimum=0.1)
TERMINAL_EXECUTE_MAX_OUTPUT = env_int("AUTOBOT_TERMINAL_EXECUTE_MAX_OUTPUT", 1024 * 1024, minimum=1024)
TERMINAL_HOOK_TIMEOUT = env_float("AUTOBOT_TERMINAL_HOOK_TIMEOUT", 15.0, minimum=1.0)  # the shell waits this long
# The sandbox (terminal/sandbox.py): every shell but a staff member's STANDARD host shell.
TERMINAL_BWRAP = env.str("AUTOBOT_TERMINAL_BWRAP", default="/usr/bin/bwrap")  # bubblewrap
TERMINAL_SANDBOX_NETWORK = env_bool("AUTOBOT_TERMINAL_SANDBOX_NETWORK", False)  # outbound at RESTRICTED
TERMINAL_SANDBOX_UID = env_int("AUTOBOT_TERMINAL_SANDBOX_UID", 1000, minimum=1)  # the uid inside
# Sandboxed sessions: caps per process (0 = no cap); processes per session (PID cgroup when possible).
TERMINAL_RLIMIT_PROCESSES = env_int("AUTOBOT_TERMINAL_RLIMIT_PROCESSES", 256)
TERMINAL_RLIMIT_CPU_SECONDS = env_int("AUTOBOT_TERMINAL_RLIMIT_CPU_SECONDS", 600)
TERMINAL_RLIMIT_MEMORY_BYTES = env_int("AUTOBOT_TERMINAL_RLIMIT_MEMORY_BYTES", 2 * 1024**3)
TERMINAL_RLIMIT_FILE_BYTES = env_int("AUTOBOT_TERMINAL_RLIMIT_FILE_BYTES", 1024**3)
TERMINAL_RLIMIT_NOFILE = env_int("AUTOBOT_TERMINAL_RLIMIT_NOFILE", 256)
# Sandboxed sessions: memory per session, its private /tmp included (memory cgroup when possible; 0 = no cap).
TERMINAL_MEMORY_MB = env_int("AUTOBOT_TERMINAL_MEMORY_MB", 1024)

# --- knowledge ---
KNOWLEDGE_MAX_UPLOAD_BYTES = env_int("AUTOBOT_KNOWLEDGE_MAX_UPLOAD_BYTES", 10 * 1024 * 1024, minimum=1)
KNOWLEDGE_MAX_ENTRY_CHARS = env_int("AUTOBOT_KNOWLEDGE_MAX_ENTRY_CHARS", 2_000_000, minimum=1)
# Drawing instructions read from one PDF (uploads and file previews) before giving up: knowledge/extract.py.
KNOWLEDGE_PDF_MAX_OPERATIONS = env_int("AUTOBOT_KNOWLEDGE_PDF_MAX_OPERATIONS", 1_000_000, minimum=1000)
KNOWLEDGE_CHUNK_SIZE = env_int("AUTOBOT_KNOWLEDGE_CHUNK_SIZE", 1000, minimum=200)
KNOWLEDGE_CHUNK_OVERLAP = env_int("AUTOBOT_KNOWLEDGE_CHUNK_OVERLAP", 150)
# Crawling loopback/private/link-local hosts (cloud metadata included) is refused unless this is on.
KNOWLEDGE_CRAWL_ALLOW_PRIVATE = env_bool("AUTOBOT_KNOWLEDGE_CRAWL_ALLOW_PRIVATE", False)
KNOWLEDGE_CRAWL_MAX_PAGES = env_int("AUTOBOT_KNOWLEDGE_CRAWL_MAX_PAGES", 1000, minimum=1)
KNOWLEDGE_CRAWL_MAX_DEPTH = env_int("AUTOBOT_KNOWLEDGE_CRAWL_MAX_DEPTH", 10)
KNOWLEDGE_CRAWL_CONCURRENCY = env_int("AUTOBOT_KNOWLEDGE_CRAWL_CONCURRENCY", 4, minimum=1)
KNOWLEDGE_CRAWL_DELAY = env_float("AUTOBOT_KNOWLEDGE_CRAWL_DELAY", 0.5)
KNOWLEDGE_CRAWL_TIMEOUT = env_float("AUTOBOT_KNOWLEDGE_CRAWL_TIMEOUT", 15.0, minimum=0.1)
KNOWLEDGE_CRAWL_MAX_BYTES = env_int("AUTOBOT_KNOWLEDGE_CRAWL_MAX_BYTES", 5 * 1024 * 1024, minimum=1024)
KNOWLEDGE_CRAWL_MAX_ACTIVE = env_int("AUTOBOT_KNOWLEDGE_CRAWL_MAX_ACTIVE", 3, minimum=1)  # per user

# --- chat ---
# Provider: ollama | openai | offline | a name from AUTOBOT_LLM_PROVIDERS; empty → offline.
CHAT_LLM_PROVIDER = env.str("AUTOBOT_LLM_PROVIDER", default="")
CHAT_LLM_BASE_URL = env.str("AUTOBOT_LLM_BASE_URL", default="")
CHAT_LLM_API_KEY = env.str("AUTOBOT_LLM_API_KEY", default="")
CHAT_LLM_MODEL = env.str("AUTOBOT_LLM_MODEL", default="")
# More providers by name: {"local": {"kind": "ollama", "base_url": "...", "model": "..."}, ...}
CHAT_LLM_PROVIDERS = env.str("AUTOBOT_LLM_PROVIDERS", default="")
CHAT_LLM_CONNECT_TIMEOUT = env_float("AUTOBOT_LLM_CONNECT_TIMEOUT", 5.0, minimum=0.1)
CHAT_LLM_READ_TIMEOUT = env_float("AUTOBOT_LLM_READ_TIMEOUT", 120.0, minimum=0.1)  # max silence between chunks
CHAT_LLM_MAX_RETRIES = env_int("AUTOBOT_LLM_MAX_RETRIES", 2)
CHAT_LLM_POOL_SIZE = env_int("AUTOBOT_LLM_POOL_SIZE", 100, minimum=1)
CHAT_LLM_CONTEXT_TOKENS = env_int("AUTOBOT_LLM_CONTEXT_TOKENS", 8192, minimum=512)
CHAT_REPLY_TOKENS = env_int("AUTOBOT_CHAT_REPLY_TOKENS", 1024, minimum=64)  # kept free for the answer
CHAT_MAX_MESSAGE_CHARS = env_int("AUTOBOT_CHAT_MAX_MESSAGE_CHARS", 32000, minimum=1)

# The operator (docs/operator.md): a chat turn's tool calls, within these budgets.
OPERATOR_MAX_STEPS = env_int("AUTOBOT_OPERATOR_MAX_STEPS", 12, minimum=1)  # model requests per turn
OPERATOR_TURN_SECONDS = env_float("AUTOBOT_OPERATOR_TURN_SECONDS", 900.0, minimum=1.0)
OPERATOR_APPROVAL_SECONDS = env_int("AUTOBOT_OPERATOR_APPROVAL_SECONDS", 600, minimum=1)  # an approval expires
# An approved call must run within this of the decision (a door's client repeating it), or it expires.
OPERATOR_APPROVED_USE_SECONDS = env_int("AUTOBOT_OPERATOR_APPROVED_USE_SECONDS", 300, minimum=1)
# Each worker marks what ran out of time this often, whether or not anyone looks (audit, records).
OPERATOR_EXPIRY_SWEEP_SECONDS = env_float("AUTOBOT_OPERATOR_EXPIRY_SWEEP_SECONDS", 30.0, minimum=0.1)
OPERATOR_COMMAND_SECONDS = env_float("AUTOBOT_OPERATOR_COMMAND_SECONDS", 120.0, minimum=0.5)  # one terminal_run
OPERATOR_OUTPUT_CHARS = env_int("AUTOBOT_OPERATOR_OUTPUT_CHARS", 8000, minimum=200)  # a tool's output to the model
OPERATOR_WRITE_HIGH_BYTES = env_int("AUTOBOT_OPERATOR_WRITE_HIGH_BYTES", 256 * 1024, minimum=1)  # bigger: HIGH
CHAT_KNOWLEDGE_PASSAGES = env_int("AUTOBOT_CHAT_KNOWLEDGE_PASSAGES", 5)
CHAT_KNOWLEDGE_TOKENS = env_int("AUTOBOT_CHAT_KNOWLEDGE_TOKENS", 2000)

# --- files ---
# Per-file upload limit and per-user quota in bytes, enforced while the upload streams; 0 = none.
FILES_MAX_UPLOAD_BYTES = env_int("AUTOBOT_FILES_MAX_UPLOAD_BYTES", 1024**3)
FILES_USER_QUOTA_BYTES = env_int("AUTOBOT_FILES_USER_QUOTA_BYTES", 10 * 1024**3)
FILES_MAX_FILES_PER_UPLOAD = env_int("AUTOBOT_FILES_MAX_FILES_PER_UPLOAD", 100, minimum=1)

# --- agents ---
AGENTS_REQUIRE_SIGNED = env_bool("AUTOBOT_AGENTS_REQUIRE_SIGNED", False)  # external frames must carry an HMAC
AGENTS_BUS_KEY = env.str("AUTOBOT_AGENTS_BUS_KEY", default="") or f"agents-bus:{SECRET_KEY}"  # signs bus envelopes
AGENTS_HEARTBEAT_SECONDS = env_float("AUTOBOT_AGENTS_HEARTBEAT_SECONDS", 15.0, minimum=1.0)
AGENTS_OFFLINE_AFTER_MISSED = env_float("AUTOBOT_AGENTS_OFFLINE_AFTER_MISSED", 3.0, minimum=1.0)  # heartbeats
AGENTS_REQUEST_TIMEOUT = env_float("AUTOBOT_AGENTS_REQUEST_TIMEOUT", 10.0, minimum=0.1)
AGENTS_MAX_TIMEOUT = env_float("AUTOBOT_AGENTS_MAX_TIMEOUT", 120.0, minimum=1.0)  # cap for ?timeout=
AGENTS_RETRY_ATTEMPTS = env_int("AUTOBOT_AGENTS_RETRY_ATTEMPTS", 3, minimum=1)
AGENTS_MAX_PAYLOAD_BYTES = env_int("AUTOBOT_AGENTS_MAX_PAYLOAD_BYTES", 256 * 1024, minimum=1024)
AGENTS_RATE_LIMIT = env_float("AUTOBOT_AGENTS_RATE_LIMIT", 20.0, minimum=0.1)  # frames/second per agent
AGENTS_RATE_BURST = env_int("AUTOBOT_AGENTS_RATE_BURST", 40, minimum=1)
AGENTS_CLOCK_SKEW_SECONDS = env_float("AUTOBOT_AGENTS_CLOCK_SKEW_SECONDS", 300.0, minimum=1.0)
AGENTS_REPLAY_WINDOW_SECONDS = env_float("AUTOBOT_AGENTS_REPLAY_WINDOW_SECONDS", 600.0, minimum=1.0)
# How long one replay check waits for Redis, and how long checks then skip it before asking again.
AGENTS_REPLAY_REDIS_TIMEOUT_SECONDS = env_float("AUTOBOT_AGENTS_REPLAY_REDIS_TIMEOUT_SECONDS", 2.0, minimum=0.1)
AGENTS_REPLAY_REDIS_COOLDOWN_SECONDS = env_float("AUTOBOT_AGENTS_REPLAY_REDIS_COOLDOWN_SECONDS", 10.0, minimum=0.1)
AGENTS_BUILTINS = env.list("AUTOBOT_AGENTS_BUILTINS", default=["knowledge", "terminal", "chat"])

# --- interop ---
# A2A: a task still working whose worker sent no beat for this long (a third of it between beats)
# is written failed (by a subscriber, GetTask or ListTasks), so nobody waits for it (interop/a2a_stream.py).
A2A_TASK_LOST_SECONDS = env_float("AUTOBOT_A2A_TASK_LOST_SECONDS", 30.0, minimum=3.0)
