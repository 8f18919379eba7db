"""Django settings, derived from :mod:`chaton.project.config` (chaton.toml + CHATON_* variables)."""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from chaton.project import config as config_module

CHATON = config_module.load()
DATA_DIR: Path = CHATON.data_dir
DATA_DIR.mkdir(parents=True, exist_ok=True)
BASE_DIR = Path(__file__).resolve().parent.parent


def _django_secret_key() -> str:
    """Return the key Django signs sessions with, created once in the data directory."""
    path = DATA_DIR / "django-secret.key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50), encoding="ascii")
    return path.read_text(encoding="ascii").strip()


SECRET_KEY = _django_secret_key()
DEBUG = CHATON.debug
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # serves the API docs' assets itself, not from a CDN
    "chaton.core",
    "chaton.members",
    "chaton.directory",
    "chaton.governance",
    "chaton.backups",
    "chaton.services",
    "chaton.mail",
    "chaton.notifications",
    "chaton.monitoring",
    "chaton.stats",
    "chaton.reports",
    "chaton.transparency",
    "django_otp",
    "chaton.security",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): this session passed its second factor.
    "django_otp.middleware.OTPMiddleware",
    # An account with an authenticator is sent to the second step until it passes.
    "chaton.security.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A lookup's NotFound raised by a view is the 404 page; a server that is down or
    # refused (LDAP, Docker, Caddy, restic, DNS, OpenDKIM) a coded error page, not a 500.
    "chaton.core.middleware.ErrorPagesMiddleware",
]

ROOT_URLCONF = "chaton.project.urls"
WSGI_APPLICATION = "chaton.project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "chaton.core.context.chaton",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(CHATON.resolved_database_url, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the worker and the web server write without "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # The tests' database is a file too, as the server's is: concurrent threads (requests,
    # the worker's lanes) then wait for each other's writes, where a shared in-memory
    # database would answer "database table is locked" at once.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-database.sqlite3")}

AUTH_USER_MODEL = "directory.Account"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "profile"
LOGOUT_REDIRECT_URL = "login"

# One argon2 hash serves Django and slapd's argon2 module alike: see directory.passwords.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# A password-reset link works for 2 hours, and once: the token derives from the password hash.
PASSWORD_RESET_TIMEOUT = 2 * 60 * 60
# Addresses of reverse proxies whose X-Forwarded-For the login throttle believes
# (chaton.core.throttle.client_address); empty: every client is its REMOTE_ADDR.
TRUSTED_PROXIES: list[str] = list(CHATON.trusted_proxies)

LANGUAGE_CODE = CHATON.language
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = CHATON.time_zone
CHATON.resolved_time_zone()  # an unknown zone stops start-up with a clear message
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every request when it is missing
# The site-wide stylesheet lives in chaton/static, which belongs to no app.
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve the few static files straight from the source folders: no collectstatic step to forget.
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

if CHATON.mail.smtp_host:
    # Read by chaton.notifications.outbox, which sends through the notifications adapter.
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = CHATON.mail.smtp_host
    EMAIL_PORT = CHATON.mail.smtp_port
    EMAIL_USE_TLS = CHATON.mail.resolved_security() == "starttls"
    EMAIL_USE_SSL = CHATON.mail.resolved_security() == "tls"
    EMAIL_HOST_USER = CHATON.mail.smtp_username
    EMAIL_HOST_PASSWORD = CHATON.mail.smtp_password
else:
    # On one machine with no mail server, notices land as files an admin can read.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(DATA_DIR / "outbox")
EMAIL_TIMEOUT = CHATON.mail.timeout_seconds
DEFAULT_FROM_EMAIL = CHATON.mail.from_address

NINJA_PAGINATION_PER_PAGE = 50

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "chaton.core.runner.SecretMaskingFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["mask_secrets"]},
    },
    "loggers": {"chaton": {"handlers": ["console"], "level": "INFO"}},
}
