"""Plain ``alembic upgrade head`` vs ``alembic-deploy upgrade``, side by side in the same run.

Run by hand (it takes a few minutes; the servers of the test-suite must be up)::

    .venv/bin/python benchmarks/bench_upgrade.py [--backends sqlite,postgresql,mysql] [--runs 5] [--json]

Scenarios, each on a generated project (``alembic init`` generic template, env.py unmodified,
N revisions that create, alter and index small tables; see ``project.py``):

* ``noop``: the database is already at head (N = 500). Target: alembic-deploy <= 0.5x alembic.
* ``full``: upgrade a fresh, empty database to head (N = 500). Target: <= 1.10x alembic.
* ``race``: K = 16 processes start at the same moment on one empty database (N = 50); counts the
  processes that fail. alembic-deploy must have none.
* ``noop-declined`` (not in the default set): ``noop`` with one call in env.py that the fast path's
  proof does not know (``platform.python_version()``, harmless), so it declines and the full path
  runs. Target: <= 1.05x alembic (the declined probe must cost next to nothing).
* ``noop-corpus`` (not in the default set): ``noop`` on SQLite (N = ``--corpus-revisions``, 50)
  once per env.py of ``tests/envpy_corpus`` labelled ``take``, each in place of the generated
  env.py; prints how many the fast path took and declined, and the ratio per shape. Target: <= 0.5x
  on every shape it takes. Both tools get ``DATABASE_URL`` as well (the shapes that read it).

Both tools run as real subprocesses through their console scripts, read the URL from
``sqlalchemy.url`` in alembic.ini (what the generic env.py reads), and alternate (A B, B A, ...) so a
noisy machine slows both alike; each ratio comes with a bootstrap interval over those pairs. One
unmeasured warm-up run of each comes first. Times are wall clock per process, start to exit.
``--cold`` deletes both tools' caches (the revision files' ``__pycache__`` and alembic-deploy's
revision-graph cache) before every timed run, which is what a freshly started container sees.

``--pool FILE...`` runs nothing: it pools the timed results of runs saved with ``--save`` (same
scenario, backend, N and ``--cold``), each run's wall times divided by its own plain alembic median,
so that a run on a slow hour weighs like one on a fast hour and every pair keeps its ratio. One run
of 11 pairs on a noisy machine seldom settles a 5 % target; several runs pooled can.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import project as generated  # noqa: E402
import servers  # noqa: E402  tests/servers.py: throwaway databases

BIN = Path(sys.executable).parent
TOOLS = ("alembic", "alembic-deploy")
TARGETS = {"noop": 0.5, "full": 1.10, "noop-corpus": 0.5, "noop-declined": 1.05}
#: What ``noop-declined`` adds to env.py after its imports: harmless, unknown to the fast path's proof.
UNKNOWN_TO_THE_PROOF = "import platform\n\nplatform.python_version()\n"
CORPUS = Path(__file__).resolve().parent.parent / "tests" / "envpy_corpus"
#: What the corpus's env.py files import from the application (``app.models``).
APP_PACKAGE = {
    "app/__init__.py": "",
    "app/models.py": "from sqlalchemy import MetaData\nfrom sqlalchemy.orm import declarative_base\n\n"
                     "Base = declarative_base()\nmetadata = MetaData()\n",
}
#: The ratio's interval: a percentile bootstrap at this level, over this many resamples.
INTERVAL_LEVEL = 0.9
INTERVAL_RESAMPLES = 4000


@dataclass
class Timing:
    #: wall-clock seconds per run, start to exit
    samples: list[float] = field(default_factory=list)
    #: CPU seconds (user + system) per run: steadier than wall time on a busy machine
    cpu: list[float] = field(default_factory=list)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def to_dict(self) -> dict[str, object]:
        return {"min": self.min, "median": self.median, "max": self.max, "samples": self.samples,
                "cpu_median": statistics.median(self.cpu), "cpu_samples": self.cpu}


def _json_key(tool: str) -> str:
    """The key under which a saved run (``--save``) holds a tool's timing."""
    return tool.replace("-", "_")


@dataclass
class TimedResult:
    scenario: str
    backend: str
    revisions: int
    runs: int
    cold: bool
    timings: dict[str, Timing]
    #: noop: did alembic-deploy take its fast path (checked once more after the timed runs)
    fast_path: bool | None
    #: noop-corpus: the env.py of tests/envpy_corpus the project runs
    shape: str | None = None

    @property
    def ratio(self) -> float:
        return self.timings["alembic-deploy"].median / self.timings["alembic"].median

    @functools.cached_property
    def interval(self) -> tuple[float, float]:
        """How far the machine's noise moves the ratio (see :func:`ratio_interval`); resampled
        once, the samples being complete when the result is made."""
        return ratio_interval(self.timings["alembic"].samples, self.timings["alembic-deploy"].samples)

    @property
    def target(self) -> float:
        return TARGETS[self.scenario]

    @property
    def met(self) -> bool:
        return self.ratio <= self.target

    def to_dict(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "backend": self.backend,
            "revisions": self.revisions,
            "runs": self.runs,
            "cold": self.cold,
            "fast_path": self.fast_path,
            "shape": self.shape,
            **{_json_key(tool): t.to_dict() for tool, t in self.timings.items()},
            "ratio": round(self.ratio, 4),
            "ratio_interval": [round(x, 4) for x in self.interval],
            "interval_level": INTERVAL_LEVEL,
            "target": self.target,
            "met": self.met,
        }


@dataclass
class RaceResult:
    backend: str
    revisions: int
    processes: int
    #: per tool, per trial: how many processes exited non-zero
    failed: dict[str, list[int]]
    #: per tool, per trial: did the database end at head with every table in place
    consistent: dict[str, list[bool]]
    #: alembic-deploy's journal per trial: (applied rows, noop rows)
    journal: list[tuple[int, int]]
    wall: dict[str, list[float]]
    #: per tool: what the failed processes died of -> how many did, over all trials
    errors: dict[str, dict[str, int]]


#: XDG_CACHE_HOME of the runs: alembic-deploy's user-level cache stays in the scratch folder.
CACHE_HOME = Path(tempfile.gettempdir()) / "ad-bench-cache"
#: ``ALEMBIC_DEPLOY_*`` variables given with ``--setting`` (every other one is removed).
SETTINGS: dict[str, str] = {}


def child_env(folder: Path | None = None) -> dict[str, str]:
    """The subprocess environment: the URL comes from alembic.ini only (and from DATABASE_URL
    when ``folder`` has a ``DATABASE_URL`` file: the noop-corpus projects), bytecode caching
    allowed (plain alembic's best case: its revision files load from __pycache__)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEMBIC_DEPLOY_")}
    for name in ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE", "GITHUB_SHA", "GITHUB_RUN_ID"):
        env.pop(name, None)
    env["XDG_CACHE_HOME"] = str(CACHE_HOME)
    env.update(SETTINGS)
    if folder is not None and (folder / "DATABASE_URL").is_file():
        env["DATABASE_URL"] = (folder / "DATABASE_URL").read_text(encoding="utf-8")
    return env


def command(tool: str) -> list[str]:
    if tool == "alembic":
        return [str(BIN / "alembic"), "upgrade", "head"]
    return [str(BIN / "alembic-deploy"), "upgrade"]


def run_timed(tool: str, folder: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``tool`` in ``folder``; it must exit 0."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command(tool), cwd=folder, env=child_env(folder), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{tool} failed in {folder} (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def run_checked(tool: str, folder: Path, url: str, head: str, clear: bool) -> tuple[float, float]:
    """:func:`run_timed`, after clearing the caches if ``clear``; the database must end at head."""
    if clear:
        clear_caches(folder)
    measured = run_timed(tool, folder)
    if versions(url) != [head]:
        raise SystemExit(f"{tool} left {url} at {versions(url)}, expected {head}")
    return measured


def versions(url: str) -> list[str]:
    """The database's alembic_version rows ([] when the table does not exist)."""
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return []
            return sorted(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def journal_outcomes(url: str, table: str = "alembic_deploy_history") -> list[str]:
    """The outcome of each journal row, oldest first ([] when there is no journal)."""
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(table):
                return []
            return [r[0] for r in conn.execute(text(f"SELECT outcome FROM {table} ORDER BY id"))]
    finally:
        engine.dispose()


def clear_caches(folder: Path) -> None:
    shutil.rmtree(folder / "migrations" / "versions" / "__pycache__", ignore_errors=True)
    shutil.rmtree(CACHE_HOME, ignore_errors=True)


def fast_path_taken(folder: Path) -> bool:
    """One more (untimed) run with --json: did alembic-deploy answer without Alembic?"""
    proc = subprocess.run([*command("alembic-deploy"), "--json"], cwd=folder, env=child_env(folder),
                          capture_output=True, text=True)
    return proc.returncode == 0 and json.loads(proc.stdout).get("fast_path") is True


def make_projects(root: Path, revisions: int) -> dict[str, Path]:
    """One generated project per tool (identical files), so neither reads the other's caches."""
    first = generated.generate(root / "alembic", revisions).parent
    second = root / "alembic-deploy"
    shutil.copytree(first, second, ignore=shutil.ignore_patterns("__pycache__"))
    return {"alembic": first, "alembic-deploy": second}


def alternate(runs: int, step: Callable[[str, bool], tuple[float, float]]) -> dict[str, Timing]:
    """Warm-up A, B, then A B B A A B ...: each tool goes first in half the pairs, so neither
    always runs right after the other (whose database was just dropped) nor always earlier in a
    slow drift of the machine. ``step(tool, timed)`` does one run."""
    timings = {tool: Timing() for tool in TOOLS}
    for tool in TOOLS:
        step(tool, False)
    for index in range(runs):
        for tool in (TOOLS if index % 2 == 0 else TOOLS[::-1]):
            wall, cpu = step(tool, True)
            timings[tool].samples.append(round(wall, 4))
            timings[tool].cpu.append(round(cpu, 4))
    return timings


def pooled(documents: Sequence[dict[str, Any]]) -> list[TimedResult]:
    """The timed results of saved runs (``--save``), pooled as ``--pool`` describes: wall times in
    multiples of their run's plain alembic median, CPU times as measured."""
    groups: dict[tuple[str, str, int, bool, str | None], list[dict[str, Any]]] = {}
    for document in documents:
        for saved in document["timed"]:
            key = (saved["scenario"], saved["backend"], saved["revisions"], saved["cold"], saved.get("shape"))
            groups.setdefault(key, []).append(saved)
    results = []
    for (scenario, backend, revisions, cold, shape), runs in groups.items():
        timings = {tool: Timing() for tool in TOOLS}
        for saved in runs:
            scale = saved["alembic"]["median"]
            for tool, timing in timings.items():
                timing.samples += [round(x / scale, 4) for x in saved[_json_key(tool)]["samples"]]
                timing.cpu += saved[_json_key(tool)]["cpu_samples"]
        fast_paths = [saved["fast_path"] for saved in runs]
        results.append(TimedResult(scenario, backend, revisions, sum(saved["runs"] for saved in runs), cold,
                                   timings, None if None in fast_paths else all(fast_paths), shape))
    return results


def ratio_interval(alembic: Sequence[float], deploy: Sequence[float]) -> tuple[float, float]:
    """A percentile bootstrap interval of median(deploy) / median(alembic), resampling whole pairs:
    run i of each tool ran back to back (:func:`alternate`), so a pair shares the machine's state
    of the moment. A target inside the interval is not resolved by the run: run more, or on a
    quieter machine. Seeded, so a saved run's samples give the same interval again."""
    rng = random.Random(0)
    n = len(alembic)
    ratios = sorted(
        statistics.median(deploy[i] for i in picks) / statistics.median(alembic[i] for i in picks)
        for picks in ([rng.randrange(n) for _ in range(n)] for _ in range(INTERVAL_RESAMPLES))
    )
    tail = int(INTERVAL_RESAMPLES * (1 - INTERVAL_LEVEL) / 2)
    return ratios[tail], ratios[-1 - tail]


def bench_noop(backend: str, revisions: int, runs: int, cold: bool, root: Path, scenario: str = "noop") -> TimedResult:
    projects = make_projects(root / f"{scenario}-{backend}", revisions)
    if scenario == "noop-declined":
        for folder in projects.values():
            env_py = folder / "migrations" / "env.py"
            text = env_py.read_text(encoding="utf-8")
            env_py.write_text(text.replace("\n\n", f"\n{UNKNOWN_TO_THE_PROOF}\n", 1), encoding="utf-8")
    head = generated.head_of(revisions)
    with servers.databases(backend, folder=root, prefix="ad_bench_") as dbs:
        url = dbs.create()
        for folder in projects.values():
            generated.set_url(folder / "alembic.ini", url)
        run_timed("alembic-deploy", projects["alembic-deploy"])  # migrate once (and create the journal)

        def step(tool: str, timed: bool) -> tuple[float, float]:
            return run_checked(tool, projects[tool], url, head, cold and timed)

        timings = alternate(runs, step)
        fast = fast_path_taken(projects["alembic-deploy"])
    return TimedResult(scenario, backend, revisions, runs, cold, timings, fast)


def corpus_shapes() -> dict[str, str]:
    """Every env.py of the corpus: file stem -> its label (``take`` or ``decline``)."""
    return {path.stem: path.read_text(encoding="utf-8").split("\n", 1)[0].split()[2]
            for path in sorted(CORPUS.glob("*.py"))}


def bench_noop_corpus(revisions: int, runs: int, cold: bool, root: Path) -> list[TimedResult]:
    """``noop`` on SQLite once per ``take`` shape of the corpus (see the module docstring)."""
    head = generated.head_of(revisions)
    generated_projects = make_projects(root / "noop-corpus" / "generated", revisions)
    results = []
    for shape, answer in corpus_shapes().items():
        if answer != "take":
            continue  # an unsafe env.py migrates elsewhere: there is no no-op to time
        env_py = (CORPUS / f"{shape}.py").read_text(encoding="utf-8")
        url = f"sqlite:///{root / 'noop-corpus' / f'{shape}.db'}"
        tool_url = url.replace("sqlite://", "sqlite+aiosqlite://", 1) if "asyncio" in env_py else url
        projects = {}
        for tool, source in generated_projects.items():
            folder = root / "noop-corpus" / shape / tool
            shutil.copytree(source, folder, ignore=shutil.ignore_patterns("__pycache__"))
            (folder / "migrations" / "env.py").write_text(env_py, encoding="utf-8")
            for relative, text in APP_PACKAGE.items():
                (folder / relative).parent.mkdir(exist_ok=True)
                (folder / relative).write_text(text, encoding="utf-8")
            (folder / "DATABASE_URL").write_text(tool_url, encoding="utf-8")
            generated.set_url(folder / "alembic.ini", tool_url)
            projects[tool] = folder
        run_timed("alembic-deploy", projects["alembic-deploy"])  # migrate once (and create the journal)

        def step(tool: str, timed: bool) -> tuple[float, float]:
            return run_checked(tool, projects[tool], url, head, cold and timed)  # noqa: B023

        timings = alternate(runs, step)
        results.append(TimedResult("noop-corpus", "sqlite", revisions, runs, cold, timings,
                                   fast_path_taken(projects["alembic-deploy"]), shape))
        _progress(True, results[-1])
    return results


def corpus_summary(results: Sequence[TimedResult]) -> str:
    """How many ``take`` shapes the fast path took, the median ratio per shape, and how the
    static proof answers every file of the corpus (a ``decline`` file answered ``take`` would be
    a wrong no-op)."""
    from alembic_deploy.fastpath.env_py import env_py_is_plain

    labels = corpus_shapes()
    static = {shape: "take" if env_py_is_plain(CORPUS / f"{shape}.py") else "decline" for shape in labels}
    taken = [r for r in results if r.fast_path]
    wrong = sorted(s for s, answer in static.items() if answer == "take" and labels[s] == "decline")
    missed = sorted(s for s, answer in static.items() if answer == "decline" and labels[s] == "take")
    lines = [
        (f"noop-corpus: {len(labels)} env.py files, {sum(a == 'take' for a in labels.values())} labelled take, "
        f"{sum(a == 'decline' for a in labels.values())} decline; the proof takes "
        f"{sum(a == 'take' for a in static.values())} and declines {sum(a == 'decline' for a in static.values())}; "
        f"labelled decline but taken (wrong no-ops): {_counted(wrong)}; "
        f"labelled take but declined: {_counted(missed)}"),
        f"noop-corpus deploys: fast path taken on {len(taken)} of {len(results)} take shapes, declined on "
        + _counted([r.shape or "" for r in results if not r.fast_path]),
    ]
    if results:
        ratios = sorted(r.ratio for r in results)
        worst = max(results, key=lambda r: r.ratio)
        lines.append(f"noop-corpus ratio per shape: median {statistics.median(ratios):.2f}x, "
                     f"max {worst.ratio:.2f}x ({worst.shape}); <= 0.5x on every shape taken: "
                     f"{'yes' if all(r.met for r in taken) else 'NO'}")
    return "\n".join(lines)


def _counted(names: Sequence[str]) -> str:
    return f"{len(names)} ({', '.join(sorted(names))})" if names else "0"


def bench_full(backend: str, revisions: int, runs: int, cold: bool, root: Path) -> TimedResult:
    projects = make_projects(root / f"full-{backend}", revisions)
    head = generated.head_of(revisions)
    with servers.databases(backend, folder=root, prefix="ad_bench_") as dbs:

        def step(tool: str, timed: bool) -> tuple[float, float]:
            url = dbs.create()
            try:
                generated.set_url(projects[tool] / "alembic.ini", url)
                return run_checked(tool, projects[tool], url, head, cold and timed)
            finally:
                dbs.drop(url)

        timings = alternate(runs, step)
    return TimedResult("full", backend, revisions, runs, cold, timings, None)


_LAUNCHER = (
    "import os, sys, time\n"
    "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def race_once(tool: str, folder: Path, processes: int) -> tuple[int, float, list[str]]:
    """Start ``processes`` copies at one instant (each waits for a shared deadline, then execs
    the tool); returns how many exited non-zero, the wall seconds from the deadline to the last
    exit, and the distinct last stderr lines of the failed ones."""
    deadline = time.time() + 0.5 + 0.15 * processes / (os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="ad-race-") as logs:
        procs = []
        for i in range(processes):
            with open(Path(logs) / f"{i}.err", "wb") as err:
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", _LAUNCHER, repr(deadline), *command(tool)],
                    cwd=folder, env=child_env(), stdout=subprocess.DEVNULL, stderr=err,
                ))
        codes = [p.wait(timeout=600) for p in procs]
        wall = time.time() - deadline
        errors = [_failure(Path(logs) / f"{i}.err") for i, code in enumerate(codes) if code != 0]
    return len(errors), wall, errors


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Failure)\b")
_GENERATED_NAME = re.compile(r"\b(ix_)?t\d{4}(_name)?\b|(?<=')note(?=')|(?<=: )note$")


def _failure(path: Path) -> str:
    """The exception line of a traceback (what the process died of), else the last line; the
    generated tables' names are blanked so that failures of one kind read alike."""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    raised = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return _GENERATED_NAME.sub("<name>", (raised or lines or ["(no output)"])[-1])[:160]



def bench_race(backend: str, revisions: int, processes: int, trials: int, root: Path) -> RaceResult:
    projects = make_projects(root / f"race-{backend}", revisions)
    head = generated.head_of(revisions)
    result = RaceResult(backend, revisions, processes, {t: [] for t in TOOLS}, {t: [] for t in TOOLS}, [],
                        {t: [] for t in TOOLS}, {t: {} for t in TOOLS})
    with servers.databases(backend, folder=root, prefix="ad_bench_") as dbs:
        for _ in range(trials):
            for tool in TOOLS:
                url = dbs.create()
                try:
                    generated.set_url(projects[tool] / "alembic.ini", url)
                    failed, wall, errors = race_once(tool, projects[tool], processes)
                    result.failed[tool].append(failed)
                    for error in errors:
                        result.errors[tool][error] = result.errors[tool].get(error, 0) + 1
                    result.wall[tool].append(round(wall, 3))
                    result.consistent[tool].append(_at_head_with_tables(url, head, revisions))
                    if tool == "alembic-deploy":
                        outcomes = journal_outcomes(url)
                        result.journal.append((outcomes.count("applied"), outcomes.count("noop")))
                finally:
                    dbs.drop(url)
    return result


def _at_head_with_tables(url: str, head: str, revisions: int) -> bool:
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.pool import NullPool

    try:
        if versions(url) != [head]:
            return False
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                tables = set(inspect(conn).get_table_names())
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - a broken database is "not consistent"
        return False
    expected = {f"t{i:04d}" for i in range((revisions + 2) // 3)}
    return expected <= tables


# -- output ---------------------------------------------------------------------------------------
def environment(argv: Sequence[str]) -> dict[str, object]:
    from importlib.metadata import version

    return {
        "command": " ".join([".venv/bin/python", "benchmarks/bench_upgrade.py", *argv]),
        "python": platform.python_version(),
        "alembic": version("alembic"),
        "sqlalchemy": version("sqlalchemy"),
        "alembic_deploy": version("alembic-deploy"),
        "cpus": os.cpu_count(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
    }


def render(env: dict[str, object], timed: list[TimedResult], races: list[RaceResult], unit: str = "s") -> str:
    """The tables; ``unit`` names what the wall times are in (``--pool``: plain alembic's medians)."""
    lines = [f"$ {env['command']}",
             (f"python {env['python']}, alembic {env['alembic']}, sqlalchemy {env['sqlalchemy']}, "
             f"{env['cpus']} CPUs, load average at end {env['loadavg_at_end']}"), ""]
    if timed:
        head = ("scenario", "backend", "N", "runs", f"alembic min/med/max {unit}",
                f"alembic-deploy min/med/max {unit}",
                "ratio", f"{INTERVAL_LEVEL:.0%} interval", "target", "cpu med s (alembic / deploy)")
        rows = [
            (
                r.scenario + (f" {r.shape}" if r.shape else "") + (" (cold)" if r.cold else "")
                + (" [fast path]" if r.fast_path else ""),
                r.backend,
                str(r.revisions),
                str(r.runs),
                " / ".join(f"{x:.3f}" for x in (r.timings["alembic"].min, r.timings["alembic"].median,
                                                r.timings["alembic"].max)),
                " / ".join(f"{x:.3f}" for x in (r.timings["alembic-deploy"].min,
                                                r.timings["alembic-deploy"].median,
                                                r.timings["alembic-deploy"].max)),
                f"{r.ratio:.2f}x",
                "{:.2f}-{:.2f}x".format(*r.interval),
                f"<= {r.target:g}x {_verdict(r)}",
                (f"{statistics.median(r.timings['alembic'].cpu):.3f} / "
                f"{statistics.median(r.timings['alembic-deploy'].cpu):.3f}"),
            )
            for r in timed
        ]
        lines += [*_table(head, rows), ""]
    if races:
        head = ("race", "N", "K", "trials", "alembic failed", "alembic at head", "alembic-deploy failed",
                "alembic-deploy at head", "journal applied/noop")
        rows = [
            (
                r.backend,
                str(r.revisions),
                str(r.processes),
                str(len(r.failed["alembic"])),
                ",".join(map(str, r.failed["alembic"])),
                ",".join("yes" if c else "no" for c in r.consistent["alembic"]),
                ",".join(map(str, r.failed["alembic-deploy"])),
                ",".join("yes" if c else "no" for c in r.consistent["alembic-deploy"]),
                ",".join(f"{a}/{n}" for a, n in r.journal),
            )
            for r in races
        ]
        lines += _table(head, rows)
        for r in races:
            for tool in TOOLS:
                for error, count in sorted(r.errors[tool].items(), key=lambda item: -item[1]):
                    lines.append(f"  {r.backend}: {count} x {tool} died of {error}")
    return "\n".join(lines)


def _verdict(result: TimedResult) -> str:
    low, high = result.interval
    verdict = "met" if result.met else "MISSED"
    return verdict + (" (within noise)" if low <= result.target < high else "")


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in (head, *rows)]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(servers.BACKENDS))
    parser.add_argument("--scenarios", default="noop,full,race", help="any of noop,full,race,noop-corpus,noop-declined")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per tool (>= 5 for the README)")
    parser.add_argument("--revisions", type=int, default=500, help="N for noop and full")
    parser.add_argument("--corpus-revisions", type=int, default=50, help="N for noop-corpus")
    parser.add_argument("--race-revisions", type=int, default=50)
    parser.add_argument("--race-processes", type=int, default=16)
    parser.add_argument("--race-trials", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="clear both tools' caches before each timed run")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="run alembic-deploy with ALEMBIC_DEPLOY_NAME=VALUE, e.g. fast_path_libpq=0")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--save", metavar="FILE", help="also write the JSON document to FILE")
    parser.add_argument("--pool", nargs="+", metavar="FILE", help="run nothing: pool runs saved with --save")
    args = parser.parse_args(argv)
    for setting in args.setting:
        name, _, value = setting.partition("=")
        SETTINGS["ALEMBIC_DEPLOY_" + name.upper()] = value
    if args.pool:
        documents = [json.loads(Path(name).read_text(encoding="utf-8")) for name in args.pool]
        sources = [f"  pooled: {d['environment']['command']} (load average at end {d['environment']['loadavg_at_end']})"
                   for d in documents]
        print(render(environment(argv), pooled(documents), [], unit="rel"))
        print("wall times (rel) in multiples of plain alembic's median in their own run\n" + "\n".join(sources))
        return 0
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    scenarios = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    timed: list[TimedResult] = []
    races: list[RaceResult] = []
    global CACHE_HOME
    with tempfile.TemporaryDirectory(prefix="ad-bench-") as tmp:
        root = Path(tmp)
        CACHE_HOME = root / "xdg-cache"
        for backend in backends:
            for scenario in ("noop", "noop-declined"):
                if scenario in scenarios:
                    timed.append(bench_noop(backend, args.revisions, args.runs, args.cold, root, scenario))
                    _progress(args.json, timed[-1])
        for backend in backends:
            if "full" in scenarios:
                timed.append(bench_full(backend, args.revisions, args.runs, args.cold, root))
                _progress(args.json, timed[-1])
        if "noop-corpus" in scenarios:  # SQLite only: the shapes differ in env.py, not in the server
            timed += bench_noop_corpus(args.corpus_revisions, args.runs, args.cold, root)
        for backend in backends:
            if "race" in scenarios:
                races.append(bench_race(backend, args.race_revisions, args.race_processes, args.race_trials, root))
                _progress(args.json, races[-1])
    env = environment(argv)
    document = json.dumps({"environment": env, "timed": [r.to_dict() for r in timed],
                           "race": [asdict(r) for r in races]}, indent=2)
    if args.save:
        Path(args.save).write_text(document + "\n", encoding="utf-8")
    corpus = [r for r in timed if r.scenario == "noop-corpus"]
    print(document if args.json else render(env, timed, races)
          + (f"\n{corpus_summary(corpus)}" if "noop-corpus" in scenarios else ""))
    return 0


def _progress(quiet: bool, result: TimedResult | RaceResult) -> None:
    if isinstance(result, TimedResult):
        text = f"{result.scenario} {result.shape or result.backend}: ratio {result.ratio:.2f}x" + (
            "" if result.fast_path is None else f" (fast path {'taken' if result.fast_path else 'declined'})")
    else:
        text = (f"race {result.backend}: alembic failed {result.failed['alembic']}, "
                f"alembic-deploy failed {result.failed['alembic-deploy']}")
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
