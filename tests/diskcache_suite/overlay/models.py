"""The model diskcache's Django tests cache: a row whose default value is costly to compute.

The tests count how often ``expensive_calculation`` runs, to check that pickling a model
instance (or a deferred queryset) into the cache and back does not compute defaults again.

The suite runs under plain pytest, without Django's test runner, so nothing creates the
table: every new connection to the in-memory database creates it here.
"""

from django.db import models
from django.db.backends.signals import connection_created
from django.utils import timezone


def expensive_calculation():
    """Stand in for a costly default; count the calls in ``expensive_calculation.num_runs``."""
    expensive_calculation.num_runs += 1
    return timezone.now()


expensive_calculation.num_runs = 0


class Poll(models.Model):
    """A question with an answer and a publication date computed by default."""

    question = models.CharField(max_length=200)
    answer = models.CharField(max_length=200)
    pub_date = models.DateTimeField("date published", default=expensive_calculation)

    class Meta:
        app_label = "tests"


def _create_table(sender, connection, **kwargs):
    """Create Poll's table in a new in-memory database (each connection has its own)."""
    if connection.vendor != "sqlite":
        return
    if Poll._meta.db_table not in connection.introspection.table_names():
        with connection.schema_editor() as editor:
            editor.create_model(Poll)


connection_created.connect(_create_table)
