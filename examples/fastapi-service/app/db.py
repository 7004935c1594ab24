"""The app's engine: the same DATABASE_URL alembic-deploy read, a small pool."""

import os

from sqlalchemy import create_engine

engine = create_engine(os.environ["DATABASE_URL"], pool_size=5, pool_pre_ping=True)
