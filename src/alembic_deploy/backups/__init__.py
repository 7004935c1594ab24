"""Backups before migrating, and restoring them.

* :mod:`.decision`: does this run need a backup (the ``backup`` policy: never, always, destructive,
  major), and of which tables (``--backup-tables auto``);
* :mod:`.methods`: taking one: a backend's dump program or copy, an RDS / Aurora snapshot, or a
  user's command;
* :mod:`.destination`: where it goes (a folder, or S3), its name and the retention count;
* :mod:`.aws`: boto3 (the ``aws`` extra), imported on first use;
* :mod:`.record`: the journal's backups table;
* :mod:`.restore`: ``alembic-deploy restore``.

The pipeline step that ties them together is :mod:`alembic_deploy.steps.backup`.
"""
