"""Django settings for diskcache's Django tests, run against diskstore.

The tests import ``tests.settings`` (through ``DJANGO_SETTINGS_MODULE``) and ``tests.models``;
diskcache's release does not ship either. The tests replace ``CACHES`` and point every cache
at a fresh directory of their own, so the location below is only a fallback.
"""

import os
import tempfile

SECRET_KEY = "diskstore-compat-suite-not-secret"

USE_TZ = True

# RequestFactory's host; Django's own test runner would allow it by itself.
ALLOWED_HOSTS = ["testserver"]

INSTALLED_APPS = ["tests"]

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# The model tests need a database; an in-memory one keeps the run self-contained.
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
}

CACHES = {
    "default": {
        "BACKEND": "diskcache.DjangoCache",
        "LOCATION": os.path.join(tempfile.gettempdir(), f"diskcache-suite-{os.getpid()}"),
    },
}
