"""Statement progress of the revision in flight, journaled while it runs, and what the next run
reads of it.

* :mod:`.sql_text`: what a statement's text tells (kind, fingerprint, masked excerpt, the schema
  object it creates or drops), without a database;
* :mod:`.record`: the progress record, as the journal's ``progress`` column keeps it;
* :mod:`.tracker`: follows the migrating connection and writes the record.

What differs between databases (which statements commit by themselves, how a driver tells that
its session is inside a transaction, how an object is looked up) is asked of the
:class:`~alembic_deploy.backends.Backend`.
"""
