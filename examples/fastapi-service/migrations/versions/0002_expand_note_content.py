"""expand: notes.content beside notes.body (release 2)

The first half of renaming notes.body to notes.content. Additive only: the new column is
nullable, body stops being required, and existing rows are copied over. Release 1 keeps working on
the result (it writes body, which still exists), and release 2 works before and after it (it writes
content only once the guard says this revision is applied), so it may run after the rollout.

Revision ID: 0002_expand_note_content
Revises: 0001_create_notes
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_expand_note_content"
down_revision = "0001_create_notes"
branch_labels = None
depends_on = None

alembic_deploy = {"expand_only": True}


def upgrade() -> None:
    op.add_column("notes", sa.Column("content", sa.Text, nullable=True))
    op.alter_column("notes", "body", existing_type=sa.Text, nullable=True)
    op.execute("UPDATE notes SET content = body WHERE content IS NULL")


def downgrade() -> None:
    op.execute("UPDATE notes SET body = content WHERE body IS NULL")
    op.alter_column("notes", "body", existing_type=sa.Text, nullable=False)
    op.drop_column("notes", "content")
