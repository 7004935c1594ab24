# fast-path: decline -- load_dotenv() may set connection options (PGOPTIONS, PGSSLMODE...) only env.py sees
import os
from logging.config import fileConfig

from alembic import context
from dotenv import load_dotenv
from sqlalchemy import create_engine, pool

load_dotenv()
config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)
target_metadata = None

connectable = create_engine(os.environ["DATABASE_URL"], poolclass=pool.NullPool)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
