"""The notes service: a small FastAPI app deployed with alembic-deploy."""
