"""Cross-check the PostgreSQL lint against squawk (``pip install squawk-cli``) on one SQL corpus.

Every case is a PostgreSQL snippet (squawk's documented examples for the rules both tools have, and
their safe counterparts), linted by both, each assuming the snippet runs inside a transaction
(between BEGIN and COMMIT for squawk, as Alembic's offline output has a PostgreSQL revision). Prints, per rule, the
cases each tool flags and how often they agree, and exits 1 when they disagree on a case the corpus
marks as one both must flag or both must pass.

    .venv/bin/python benchmarks/lint_vs_squawk.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from alembic_deploy.alembic_env import RenderedStatement
from alembic_deploy.lint import lint_revision

#: squawk's rule -> ours, for the rules both tools have.
SHARED = {
    "ban-drop-table": "drop-table",
    "ban-drop-column": "drop-column",
    "ban-drop-database": "drop-schema-or-database",
    "renaming-table": "rename-table",
    "renaming-column": "rename-column",
    "adding-required-field": "add-required-column",
    "adding-not-nullable-field": "set-not-null",
    "changing-column-type": "change-column-type",
    "require-concurrent-index-creation": "index-not-concurrent",
    "require-concurrent-index-deletion": "index-not-concurrent",
    "ban-concurrent-index-creation-in-transaction": "concurrently-in-transaction",
    "adding-foreign-key-constraint": "fk-not-valid",
    "constraint-missing-not-valid": "check-not-valid",
    "disallowed-unique-constraint": "add-unique",
    "adding-serial-primary-key-field": "add-primary-key",
    "adding-field-with-default": "volatile-default",
    "ban-truncate-cascade": "truncate",
}

#: (our rule, SQL, whether it must be flagged). squawk's docs give the flagged forms and their fixes.
CORPUS = [
    ("drop-table", "DROP TABLE IF EXISTS core_bar;", True),
    ("drop-table", "CREATE TABLE core_bar (id bigint);", False),
    ("drop-column", 'ALTER TABLE "core_recipe" DROP COLUMN "foo";', True),
    ("drop-column", 'ALTER TABLE "core_recipe" ADD COLUMN "foo" integer NULL;', False),
    ("drop-schema-or-database", "DROP DATABASE \"table_name\";", True),
    ("drop-schema-or-database", "DROP DATABASE IF EXISTS \"table_name\";", True),
    ("rename-table", 'ALTER TABLE "core_recipe" RENAME TO "core_bar";', True),
    ("rename-column", 'ALTER TABLE "core_recipe" RENAME COLUMN "foo" TO "bar";', True),
    ("rename-column", 'ALTER TABLE "core_recipe" ADD COLUMN "bar" integer NULL;', False),
    ("add-required-column", 'ALTER TABLE "core_recipe" ADD COLUMN "foo" integer NOT NULL;', True),
    ("add-required-column", 'ALTER TABLE "core_recipe" ADD COLUMN "foo" integer NOT NULL DEFAULT 10;', False),
    ("set-not-null", 'ALTER TABLE "recipe" ALTER COLUMN "view_count" SET NOT NULL;', True),
    ("set-not-null", 'ALTER TABLE "recipe" ALTER COLUMN "view_count" DROP NOT NULL;', False),
    # The fix squawk documents: a validated CHECK (col IS NOT NULL) lets SET NOT NULL skip the scan.
    ("set-not-null", ('ALTER TABLE "recipe" ADD CONSTRAINT "vc_not_null" CHECK ("view_count" IS NOT NULL) NOT VALID; '
     'ALTER TABLE "recipe" VALIDATE CONSTRAINT "vc_not_null"; '
     'ALTER TABLE "recipe" ALTER COLUMN "view_count" SET NOT NULL;'), False),
    ("change-column-type", 'ALTER TABLE "core_recipe" ALTER COLUMN "edits" TYPE text USING "edits"::text;', True),
    ("change-column-type", 'ALTER TABLE "core_recipe" ALTER COLUMN "edits" SET DEFAULT 0;', False),
    ("index-not-concurrent", 'CREATE INDEX "field_name_idx" ON "table_name" ("field_name");', True),
    ("index-not-concurrent", 'DROP INDEX IF EXISTS "field_name_idx";', True),
    ("index-not-concurrent", 'COMMIT; CREATE INDEX CONCURRENTLY "name_idx" ON "table_name" ("name");', False),
    ("concurrently-in-transaction", 'CREATE INDEX CONCURRENTLY "field_name_idx" ON "table_name" ("field_name");', True),
    ("fk-not-valid", 'ALTER TABLE "email" ADD CONSTRAINT "fk_user" FOREIGN KEY ("user_id") REFERENCES "user" ("id");',
     True),
    ("fk-not-valid", 'ALTER TABLE "email" ADD CONSTRAINT "fk_u" FOREIGN KEY ("user_id") REFERENCES "user" NOT VALID;',
     False),
    ("check-not-valid", 'ALTER TABLE "accounts" ADD CONSTRAINT "positive_balance" CHECK ("balance" >= 0);', True),
    ("check-not-valid", 'ALTER TABLE "accounts" ADD CONSTRAINT "positive_balance" CHECK ("balance" >= 0) NOT VALID;',
     False),
    ("add-unique", 'ALTER TABLE table_name ADD CONSTRAINT field_name_constraint UNIQUE (field_name);', True),
    ("add-unique", "ALTER TABLE distributors ADD CONSTRAINT dist_zip_key UNIQUE USING INDEX dist_zip_idx;", False),
    ("add-primary-key", "ALTER TABLE a ADD COLUMN b serial PRIMARY KEY;", True),
    ("add-primary-key", "ALTER TABLE items ADD PRIMARY KEY USING INDEX items_pk;", False),
    ("volatile-default", "ALTER TABLE \"core_recipe\" ADD COLUMN \"foo\" uuid DEFAULT gen_random_uuid();", True),
    ("volatile-default", "ALTER TABLE \"core_recipe\" ADD COLUMN \"foo\" integer DEFAULT 10;", False),
    ("truncate", "TRUNCATE a, b, c CASCADE;", True),
]


def ours(sql: str) -> set[str]:
    statements = []
    in_transaction = True
    for part in (p.strip() for p in sql.split(";")):
        if part.upper() == "COMMIT":
            in_transaction = False
        elif part:
            statements.append(RenderedStatement(part + ";", 1, in_transaction))
    result = lint_revision("case", "case.sql", "def downgrade():\n    op.x()\n", "postgresql", statements)
    return {f.rule for f in result.findings}


def theirs(squawk: str, sql: str) -> set[str]:
    # Wrapped as Alembic's offline output wraps a PostgreSQL revision (squawk's --assume-in-transaction
    # does not enable ban-concurrent-index-creation-in-transaction; an explicit BEGIN does).
    run = subprocess.run([squawk, "--reporter", "json"], input=f"BEGIN;\n{sql}\nCOMMIT;",
                         capture_output=True, text=True, check=False)
    return {SHARED[item["rule_name"]] for item in json.loads(run.stdout or "[]") if item["rule_name"] in SHARED}


def main() -> int:
    squawk = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(squawk).exists():
        print("squawk is not installed: pip install squawk-cli")
        return 2
    version = subprocess.run([squawk, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    rows: dict[str, list[int]] = {}
    wrong = []
    lint_time = squawk_time = 0.0
    for rule, sql, flagged in CORPUS:
        start = time.perf_counter()
        a = rule in ours(sql)
        lint_time += time.perf_counter() - start
        start = time.perf_counter()
        b = rule in theirs(squawk, sql)
        squawk_time += time.perf_counter() - start
        counts = rows.setdefault(rule, [0, 0, 0, 0])  # cases, ours flags, squawk flags, agree
        counts[0] += 1
        counts[1] += a
        counts[2] += b
        counts[3] += a == b
        if a != flagged or b != flagged:
            wrong.append(f"  {rule}: expected {'flagged' if flagged else 'passed'}; alembic-deploy "
                         f"{'flags' if a else 'passes'}, squawk {'flags' if b else 'passes'}: {sql}")
    print(f"alembic-deploy lint vs {version}, {len(CORPUS)} PostgreSQL cases")
    print(f"{'rule':30} {'cases':>5} {'ours':>5} {'squawk':>6} {'agree':>6}")
    for rule, (cases, a_count, b_count, agree) in rows.items():
        print(f"{rule:30} {cases:5} {a_count:5} {b_count:6} {agree / cases:6.0%}")
    total_agree = sum(r[3] for r in rows.values())
    print(f"agreement: {total_agree}/{len(CORPUS)} cases; lint {lint_time:.3f} s, squawk {squawk_time:.3f} s "
          "(one process per case)")
    if wrong:
        print("cases where a tool differs from what the corpus expects:")
        print("\n".join(wrong))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
