"""drop accounts.legacy, which this release no longer uses (contract)

Revision ID: x5_drop_legacy
Revises: x4_merge
"""
import sqlalchemy as sa
from alembic import op

revision = "x5_drop_legacy"
down_revision = "x4_merge"
branch_labels = None
depends_on = None

alembic_deploy = {"contract": True}


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("legacy")


def downgrade() -> None:
    op.add_column("accounts", sa.Column("legacy", sa.String(100), nullable=True))
