"""wait at a gate the test opens (a revision that is still running when the test looks)

Revision ID: a4_gated
Revises: "a3_seed"
"""
import os
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "a4_gated"
down_revision = "a3_seed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    gate = Path(os.environ["TEST_GATE_FILE"])
    Path(f"{gate}.entered").touch()
    deadline = time.monotonic() + 120
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    op.add_column("users", sa.Column("gated", sa.Boolean, nullable=True))


def downgrade() -> None:
    op.drop_column("users", "gated")
