"""The docs' examples, run as a reader would copy them.

- Every crontab line of README.md and the man pages, with the environment its
  block sets, runs under `env -i` as cron runs it (cron's own variables only,
  `/bin/sh -c`), against a temporary MQ_DIR; `/usr/local/bin` in the block's
  PATH stands for where the tools are installed, here $MQ_BIN, and other paths
  under /var/lib/ in the command for the same paths under a temporary directory.
- Each unit in contrib/systemd passes `systemd-analyze verify`, and
  mq-consume@.service's ExecStart, expanded as systemd does, runs under
  `env -i` with the unit's Environment= and the env file its header shows.
- README's copy of a topic works when the topic has several partitions.
- How the tests' Python is set up: a venv, and .ci/run is README's test command.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from test_docs import BIN, REPO, binary

CRON_JOB = re.compile(r"^((?:[0-9*][0-9*/,-]*\s+){5}|@\w+\s+)(\S.*)$")
ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
DOC_FILES = [REPO / "README.md", *sorted((REPO / "man").glob("*.[157]"))]


def literal_blocks(path):
    """The code blocks of a Markdown file, or the `.Bd -literal` displays of a man page, unescaped."""
    text = path.read_text()
    if path.suffix == ".md":
        return [m.group(1) for m in re.finditer(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S)]
    blocks = re.findall(r"^\.Bd -literal[^\n]*\n(.*?)^\.Ed", text, re.M | re.S)
    return [b.replace("\\e", "\\").replace("\\&", "") for b in blocks]


def crontab_blocks():
    """(file, block text) for each block that holds a crontab line."""
    return [(path, block) for path in DOC_FILES for block in literal_blocks(path)
            if any(CRON_JOB.match(line) for line in block.splitlines())]


def cron_jobs():
    """(file, the block's variable assignments before the job, the job's command) for every crontab line."""
    jobs = []
    for path, block in crontab_blocks():
        assignments = {}
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if job := CRON_JOB.match(line):
                jobs.append((path, dict(assignments), job.group(2)))
            elif assignment := ASSIGNMENT.match(line):
                assignments[assignment.group(1)] = assignment.group(2)
    return jobs


def test_docs_have_crontab_lines():
    files = {path.name for path, _, _ in cron_jobs()}
    assert {"README.md", "mq-compact.1", "mq-mirror.1", "mq.7"} <= files, files


@pytest.mark.parametrize("path,block", crontab_blocks(), ids=lambda v: v.name if isinstance(v, Path) else "")
def test_crontab_block_is_what_crontab_takes(path, block):
    for line in block.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert CRON_JOB.match(line) or ASSIGNMENT.match(line), (
                f"{path.name}: a crontab has only comments, VAR=value and job lines, not: {line!r}"
                + (" (cron has no line continuation)" if line.rstrip().endswith("\\") else ""))
            assert not re.search(r"(?<!\\)%", line), f"{path.name}: cron turns % into a newline: {line!r}"


def cron_environment(assignments, home, log_dir):
    """What cron gives a job: its own HOME, LOGNAME, SHELL and PATH, then the crontab's assignments, literally."""
    env = {"HOME": str(home), "LOGNAME": "root", "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin"}
    for name, value in assignments.items():
        if name == "PATH":
            value = ":".join(str(BIN) if d == "/usr/local/bin" else d for d in value.split(":"))
        if name == "MQ_DIR":
            value = str(log_dir)
        env[name] = value
    return env


def env_i(env, command, **kwargs):
    args = ["env", "-i", *[f"{k}={v}" for k, v in env.items()], "/bin/sh", "-c", command]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


@pytest.mark.parametrize("path,assignments,command", cron_jobs(),
                         ids=lambda v: v.name if isinstance(v, Path) else (v[:40] if isinstance(v, str) else ""))
def test_crontab_line_runs_under_cron_environment(path, assignments, command, tmp_path):
    assert "PATH" in assignments and "MQ_DIR" in assignments, (
        f"{path.name}: the crontab block of '{command}' must set PATH= (cron's is /usr/bin:/bin) "
        f"and MQ_DIR= (cron has no login shell's variables)")
    log_dir, home = tmp_path / "log", tmp_path / "home"
    home.mkdir()
    subprocess.run([binary("mq-topic"), "create", "--dir", str(log_dir), "orders", "--partitions", "2"], check=True)
    subprocess.run([binary("mq-produce"), "--dir", str(log_dir), "orders"], input=b"a\nb\nc\n", check=True)
    env = cron_environment(assignments, home, log_dir)
    tool = shlex.split(command)[0]
    found = env_i(env, f"command -v {shlex.quote(tool)}")
    assert found.returncode == 0 and found.stdout.strip() == str(BIN / tool), (
        f"{path.name}: under cron's environment '{tool}' is not found in PATH={assignments['PATH']}")
    if "://" in command:
        return  # it needs a server elsewhere: that it is found is what can be checked here
    var_lib = tmp_path / "var-lib"
    for written in re.findall(r"/var/lib/(\S+)", command):
        (var_lib / written).parent.mkdir(parents=True, exist_ok=True)
    result = env_i(env, command.replace("/var/lib/", f"{var_lib}/"), cwd=home)
    assert result.returncode == 0 and not result.stdout and not result.stderr, (
        f"{path.name}: '{command}' under env -i exited {result.returncode} (cron mails any output): "
        f"{result.stdout}{result.stderr}")
    assert not (home / ".local").exists(), f"{path.name}: '{command}' used ~/.local, not MQ_DIR"
    for written in re.findall(r"/var/lib/(\S+)", command):
        assert (var_lib / written).exists(), f"{path.name}: '{command}' did not write /var/lib/{written}"


# systemd units

UNITS = sorted((REPO / "contrib" / "systemd").glob("*.service"))


def unit_settings(path):
    """Each `Key=value` of a unit file, in order, comments left out."""
    return [tuple(line.split("=", 1)) for line in path.read_text().splitlines()
            if "=" in line and not line.startswith(("#", ";", "["))]


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_passes_systemd_analyze_verify(unit, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is not installed (Debian: systemd)")
    instance = tmp_path / unit.name.replace("@.", "@example.")
    shutil.copy(unit, instance)
    result = subprocess.run([analyze, "verify", str(instance)], capture_output=True, text=True)
    # Before `make install` the tools and their pages are not where the unit says.
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "is not executable: No such file" not in line and "Command 'man " not in line]
    assert not problems, "systemd-analyze verify:\n" + "\n".join(problems)


def systemd_words(command, env, instance):
    """ExecStart= as systemd splits it: %i is the instance, $VAR splits into words, ${VAR} is one word."""
    command = command.replace("%i", instance).replace("%%", "%")
    words = []
    for word in shlex.split(command):
        if m := re.fullmatch(r"\$(\w+)", word):
            words += env.get(m.group(1), "").split()
        else:
            words.append(re.sub(r"\$\{(\w+)\}", lambda v: env.get(v.group(1), ""), word))
    return words


def test_consume_unit_runs_under_env_i(tmp_path):
    """mq-consume@.service's ExecStart with its Environment= and the env file its header shows."""
    unit = REPO / "contrib" / "systemd" / "mq-consume@.service"
    settings = unit_settings(unit)
    header = re.search(r"printf '([A-Z_]+)=(.*?)\\n' > /etc/mq/consume-(\w+)\.env", unit.read_text())
    assert header, "the header shows the env file it reads, as printf 'NAME=...\\n' > /etc/mq/consume-GROUP.env"
    name, value, instance = header.groups()
    assert ("EnvironmentFile", f"/etc/mq/consume-%i.env") in settings
    log_dir = tmp_path / "log"
    env = {}
    for key, setting in settings:
        if key == "Environment":
            var, _, val = setting.partition("=")
            env[var] = str(log_dir) if var == "MQ_DIR" else val
    # The handler is the site's own program; here it keeps what it is given.
    received = tmp_path / "received"
    handler = tmp_path / "handler"
    handler.write_text(f"#!/bin/sh\ncat >> {received}\necho >> {received}\n")
    handler.chmod(0o755)
    topics, separator, _ = value.partition(" -- ")
    assert separator, f"the env file's {name} ends with '-- HANDLER'"
    env[name] = f"{topics} -- {handler}"
    exec_start = dict(settings)["ExecStart"]
    words = systemd_words(exec_start, env, instance)
    assert words[0] == "/usr/local/bin/mq-consume", exec_start
    words[0] = str(binary("mq-consume"))
    for topic in topics.split():
        subprocess.run([binary("mq-topic"), "create", "--dir", str(log_dir), topic, "--partitions", "2"], check=True)
    process = subprocess.Popen(["env", "-i", *[f"{k}={v}" for k, v in env.items()], *words],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        subprocess.run([binary("mq-produce"), "--dir", str(log_dir), topics.split()[0]], input=b"m1\nm2\nm3\n",
                       check=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            if received.exists() and sorted(received.read_text().split()) == ["m1", "m2", "m3"]:
                break
            time.sleep(0.1)
        assert process.poll() is None, f"the service exited {process.returncode}: {process.stderr.read()}"
        assert received.exists() and sorted(received.read_text().split()) == ["m1", "m2", "m3"]
        process.send_signal(getattr(signal, dict(settings).get("KillSignal", "SIGTERM")))
        status = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    success = {0} | {int(s) for s in dict(settings).get("SuccessExitStatus", "").split()}
    assert status in success, f"stopped, it exited {status}, not a SuccessExitStatus {sorted(success)}"
    group = subprocess.run([binary("mq-stat"), "--dir", str(log_dir), "--json"], check=True, capture_output=True,
                           text=True).stdout
    assert f'"group":"{instance}"' in group, "the instance name is the group"


# README's and the man pages' copy of topic A into B

COPY_DOCS = [REPO / "README.md", REPO / "man" / "mq-tail.1", REPO / "man" / "mq-produce.1"]


def copy_example(path):
    """The lines of the block that copies A into B, which mention B, without their comments."""
    for block in literal_blocks(path):
        if "mq-produce --json B" in block:
            return [re.sub(r"\s+#.*$", "", line) for line in block.splitlines() if re.search(r"\bB\b", line)]
    pytest.fail(f"{path.name} has no example with 'mq-produce --json B'")


def partition_contents(log_dir, topic, partitions):
    return [subprocess.run([binary("mq-tail"), "--dir", str(log_dir), "--from", "beginning", "-p", str(p),
                            "--format", "%k %s %h\\n", topic], check=True, capture_output=True).stdout
            for p in range(partitions)]


@pytest.mark.parametrize("path", COPY_DOCS, ids=lambda p: p.name)
def test_copy_example_copies_a_topic_of_several_partitions(path, tmp_path):
    log_dir = tmp_path / "log"
    subprocess.run([binary("mq-topic"), "create", "--dir", str(log_dir), "A", "--partitions", "3"], check=True)
    lines = "".join(f"user{i}:click {i}\n" for i in range(30)).encode()
    subprocess.run([binary("mq-produce"), "--dir", str(log_dir), "-K", ":", "-H", "src=web", "A"], input=lines,
                   check=True)
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", MQ_DIR=str(log_dir))
    script = "set -e\n" + "\n".join(copy_example(path)) + "\n"
    result = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{path.name}'s copy example exited {result.returncode}: {result.stderr}"
    assert partition_contents(log_dir, "B", 3) == partition_contents(log_dir, "A", 3)


# The tests' Python

def make_dry_run(target):
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    return subprocess.run(["make", "-n", "--no-print-directory", target], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout


def test_test_packages_go_into_a_venv_not_the_system_python():
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "--break-system-packages" not in setup
    pip_runs = re.findall(r"^.*-m pip install.*$", setup, re.M)
    assert pip_runs and all('"$venv/bin/python" -m pip' in line for line in pip_runs), pip_runs
    assert re.search(r"^venv=\$\{MQ_VENV:-\$root/\.build/venv\}$", setup, re.M), "the venv is .build/venv"
    assert "python3-venv" in setup, "Debian's python3 needs python3-venv for `python3 -m venv`"


def test_make_test_runs_pytest_and_swift_test_with_the_venv():
    commands = make_dry_run("test")
    venv = str(REPO / ".build" / "venv")
    pytest_lines = [line for line in commands.splitlines() if "-m pytest" in line]
    assert pytest_lines and all(".build/venv/bin/python -m pytest" in line for line in pytest_lines), pytest_lines
    swift_test = [line for line in commands.splitlines() if re.search(r"\bswift test\b", line)]
    assert swift_test and all(f'PATH="{venv}/bin:' in line for line in swift_test), (
        "swift test's python3 (PartitionerTests, CompressionTests) must be the venv's: " + str(swift_test))


def test_make_demo_needs_no_python_packages():
    setup_runs = [line for line in make_dry_run("demo").splitlines() if "setup.sh" in line]
    assert setup_runs and all(line.rstrip().endswith("setup.sh build") for line in setup_runs), setup_runs


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    documented = re.findall(r"^(make test)\s+#", readme, re.M)
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert documented and ci == [documented[0]], f".ci/run runs {ci}; README's test command is {documented}"
