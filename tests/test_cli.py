"""The command dispatcher and the rule families' conda environments.

A command imports only its own topic module, so each rule family's environment in envs/ needs
only what that module (and the trainact modules it imports) import. These tests check the
command table against what the modules register, that a command really loads nothing else,
and that every rule's environment holds every third-party package its command imports, pinned
inside pyproject.toml's ranges.
"""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from snakemake_rules import workflow_rules

from trainact import cli
from trainact.sourcegraph import imported_names, trainact_closure

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[1]
# Import name -> distribution name, where they differ.
DISTRIBUTIONS = {"yaml": "pyyaml"}


def registered_commands(module_name: str) -> list[str]:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    importlib.import_module(module_name).register_cli(subparsers)
    return list(subparsers.choices)


def test_command_table_matches_what_the_modules_register():
    registered = {
        command: module for module in cli.COMMAND_MODULES for command in registered_commands(module)
    }
    assert registered == cli.COMMANDS


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["train", "--seed", "0"], "train"),
        (["-v", "pso-bench"], "pso-bench"),
        (["--help"], None),
        (["no-such-command"], None),
        ([], None),
    ],
)
def test_requested_command(argv, command):
    assert cli.requested_command(argv) == command


def test_a_command_imports_only_its_own_module():
    """`prepare` (a data job) loads neither the plotting, table nor template libraries, nor the
    other topic modules; `--help` still lists every command."""
    probe = (
        "import sys\n"
        "from trainact import cli\n"
        "try:\n"
        "    cli.main(['prepare', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('matplotlib', 'pandas', 'jinja2') or m.startswith('trainact.'))), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert "train_per_class" in result.stdout  # prepare's own help was printed
    loaded = result.stderr.split()
    assert [m for m in loaded if not m.startswith("trainact.")] == []
    allowed = {"cli", "errors", "data", "data.archive", "data.prepare", "data.cifar", "files"}
    assert {m for m in loaded if m.startswith("trainact.")} <= {f"trainact.{m}" for m in allowed}

    listing = subprocess.run(
        [sys.executable, "-m", "trainact", "--help"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert [c for c in cli.COMMANDS if c not in listing.stdout] == []


def third_party_imports(module_name: str) -> set[str]:
    """Top-level names of the non-trainact, non-standard-library modules that ``module_name``
    imports anywhere in its code, following the trainact modules it imports."""
    names = {n for m in trainact_closure(module_name) for n in imported_names(m)}
    tops = {n.split(".")[0] for n in names}
    return {t for t in tops if t != "trainact" and t != "__future__" and t not in sys.stdlib_module_names}


def rule_environments() -> dict[str, tuple[str, str]]:
    """Rule -> (its conda env file, the trainact command its shell runs), as Snakemake reads them."""
    found = {}
    for name, rule in workflow_rules().items():
        command = re.search(r"python -m trainact ([\w-]+)", rule.shell or "")
        if command is None:
            continue  # a rule that runs no command (rule all)
        assert rule.conda, f"rule {name} has no conda env"
        found[name] = (str(rule.conda.relative_to(REPO)), command.group(1))
    return found


def pinned(env_file: str) -> dict[str, str]:
    """Distribution -> pinned version, from the env's pip section."""
    dependencies = yaml.safe_load((REPO / env_file).read_text())["dependencies"]
    (pip,) = [d["pip"] for d in dependencies if isinstance(d, dict)]
    return dict(line.lower().split("==") for line in pip)


def test_every_rule_environment_holds_what_its_command_imports():
    environments = rule_environments()
    assert {"download", "prepare", "train", "ae_pretrain", "ae_finetune", "pso",
            "aggregate", "figures", "provenance", "paper_report"} <= set(environments)  # fmt: skip
    assert len({env for env, _ in environments.values()}) >= 2  # one per rule family
    missing = {}
    for rule, (env_file, command) in environments.items():
        needed = {DISTRIBUTIONS.get(name, name) for name in third_party_imports(cli.COMMANDS[command])}
        lacking = needed - set(pinned(env_file))
        if lacking:
            missing[rule] = (env_file, sorted(lacking))
    assert missing == {}


def test_environment_pins_lie_inside_pyproject_ranges():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    ranges = {Requirement(r).name.lower(): Requirement(r).specifier for r in project["dependencies"]}
    for env_file in sorted(str(p.relative_to(REPO)) for p in (REPO / "envs").glob("*.yaml")):
        for name, version in pinned(env_file).items():
            assert name in ranges, f"{env_file}: {name} is not a dependency in pyproject.toml"
            assert version in ranges[name], f"{env_file}: {name}=={version} outside {ranges[name]}"


# ------------------------------------------------------------------------- one CLI convention


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(subparsers.choices)


def test_every_command_follows_one_convention():
    """Handlers are ``_cmd_<command>``; a config slice arrives as ``--params`` JSON; a command
    writes one file to ``--out`` or several into ``--out-dir``, never both; progress bars can be
    switched off where there are any."""
    problems = []
    for command, parser in command_parsers().items():
        handler = parser.get_default("func")
        if handler.__name__ != f"_cmd_{command.replace('-', '_')}":
            problems.append(f"{command}: handler {handler.__name__}")
        options = {o for action in parser._actions for o in action.option_strings}
        if {"--out", "--out-dir"} <= options:
            problems.append(f"{command}: both --out and --out-dir")
        if "--output" in options or "--outdir" in options:
            problems.append(f"{command}: --output/--outdir")
    assert problems == []


def test_every_rule_passes_its_config_slice_as_params():
    """A rule whose params hold a config slice hands it to its command as ``--params``, the same
    way everywhere (no slice spelled out as flags)."""
    parsers = command_parsers()
    for rule, view in workflow_rules().items():
        if "slice" not in view.params:
            continue
        shell = view.shell
        command = re.search(r"python -m trainact ([\w-]+)", shell).group(1)
        assert "--params {params.slice:q}" in shell, rule
        assert "--params" in {o for a in parsers[command]._actions for o in a.option_strings}, command


# ------------------------------------------------------------------- faults a user can cause
# Each ends in one line on stderr naming the file and the fix, status 2, and no traceback; run
# as the workflow runs a command, in a process of its own.


def run_trainact(*argv: str, prelude: str = "", cwd: Path) -> subprocess.CompletedProcess:
    """``python -m trainact argv`` in a process of its own, after the Python ``prelude`` (which
    simulates a fault that root, running the CI, could not meet: a full disk, a refused folder)."""
    code = f"import sys\n{prelude}\nfrom trainact.cli import main\nsys.exit(main({list(argv)!r}))"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def only_error_line(result: subprocess.CompletedProcess) -> str:
    """The command's one error line (its last line on stderr), after checking the exit status
    and that no traceback came with it."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.splitlines()[-1]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    from trainact.data.synthetic import build_synthetic_archive

    path = tmp_path_factory.mktemp("archive") / "cifar-10-python.tar.gz"
    build_synthetic_archive(path)
    return path


def test_a_full_disk_is_named_with_the_file_and_the_space(tmp_path, archive):
    """prepare knows the size of what it writes (its arrays) and checks it against the free
    space first."""
    import numpy as np

    from trainact.data.prepare import prepare
    from trainact.files import size_text

    with np.load(prepare(archive, tmp_path / "fits.npz", progress=False)) as prepared:
        needed = size_text(sum(prepared[key].nbytes for key in prepared.files))
    out = tmp_path / "data" / "cifar10.npz"
    full_disk = (
        "import shutil\n"
        "shutil.disk_usage = lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 300_000, 300_000)"
    )
    result = run_trainact(
        "prepare", "--archive", str(archive), "--out", str(out), prelude=full_disk, cwd=tmp_path
    )
    assert only_error_line(result) == (
        f"trainact prepare: error: no space left on device writing {out} ({needed} needed, 0.3 MB free)"
    )
    assert list(out.parent.iterdir()) == []


def test_a_refused_folder_is_named(tmp_path, archive):
    results = tmp_path / "results"
    results.mkdir()
    refuse = (
        "import errno, os\nreal_mkdir = os.mkdir\n"
        "def mkdir(path, mode=0o777):\n"
        f"    if os.path.dirname(path) == {str(results)!r}:\n"
        "        raise PermissionError(errno.EACCES, 'Permission denied', path)\n"
        "    real_mkdir(path, mode)\n"
        "os.mkdir = mkdir"
    )
    out = results / "data" / "cifar10.npz"
    result = run_trainact(
        "prepare", "--archive", str(archive), "--out", str(out), prelude=refuse, cwd=tmp_path
    )
    assert only_error_line(result) == (
        f"trainact prepare: error: cannot write {out}: the folder {results} is not writable "
        "(permission denied)"
    )


@pytest.mark.slow  # imports torch: 4 s
def test_damaged_prepared_data_is_named_with_the_fix(tmp_path):
    damaged = tmp_path / "cifar10.npz"
    damaged.write_bytes(b"PK\x03\x04" + bytes(1000))  # a zip's first bytes, then nothing of one
    args = (
        "--data",
        str(damaged),
        "--size",
        "small",
        "--activation",
        "relu",
        "--out-dir",
        str(tmp_path / "run"),
    )
    result = run_trainact("train", *args, "--device", "cpu", cwd=tmp_path)
    assert only_error_line(result) == (
        f"trainact train: error: {damaged} is damaged (BadZipFile: File is not a zip file); "
        "delete it and rerun to prepare it again"
    )


def test_an_unwritable_log_sends_the_error_to_the_starting_process(tmp_path):
    """The workflow's jobs write to their log (``> {log} 2>&1``); on a full disk the log takes
    nothing, so the error goes to the stderr of the process that started the job shell."""
    missing = tmp_path / "missing.tar.gz"
    command = f"{sys.executable} -m trainact prepare --archive {missing} --out x.npz"
    job = f"set -euo pipefail; {command} > /dev/full 2>&1"  # as Snakemake runs a rule's shell
    snakemake = f"import subprocess, sys\nsys.exit(subprocess.call(['bash', '-c', {job!r}]))"
    result = subprocess.run(
        [sys.executable, "-c", snakemake], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"trainact prepare: error: archive not found: {missing} "
        "(printed here: its log cannot be written: No space left on device)\n"
    )
