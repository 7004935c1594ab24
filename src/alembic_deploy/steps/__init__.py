"""One module per pipeline step (and the parts of the upgrade step); :mod:`alembic_deploy.pipeline`
strings them together."""
