"""The SQLAlchemy models: the schema at the head of this release's migrations (autogenerate reads it)."""

from sqlalchemy import String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    # Was `body` until the expand/contract of revisions 0002 and 0003.
    content: Mapped[str | None] = mapped_column(Text)
