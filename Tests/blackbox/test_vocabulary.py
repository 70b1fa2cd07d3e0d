"""One vocabulary across the tools (issue 14 §3), held by docs/FLAGS.md.

The table in docs/FLAGS.md gives every flag one row: its short letters, the
value placeholders it takes, its meaning and the commands that have it. The
same table is built here from each tool's `--experimental-dump-help`, and
the two must agree: a new flag needs a row (and a meaning that no other
flag of that name has), and one name cannot mean two things.
"""

import re
from collections import defaultdict

import pytest

from test_docs import REPO, TOOLS, commands, dump_help

FLAGS_MD = REPO / "docs" / "FLAGS.md"


def table_rows(text, heading):
    """The rows of the first table under `## heading`, as lists of cells."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/FLAGS.md has no '## {heading}' section"
    lines = [line for line in match.group(1).splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def ticked(cell):
    """`-d`, `-D` -> ["-d", "-D"]."""
    return re.findall(r"`([^`]+)`", cell)


def where(cell, every):
    """`mq-dlq show/redrive, mq-tail` -> {"mq-dlq show", "mq-dlq redrive", "mq-tail"}."""
    if cell == "every command":
        return set(every)
    while re.search(r"\([^()]*\)", cell):
        cell = re.sub(r"\([^()]*\)", "", cell)  # asides, nested ones too
    found = set()
    for part in cell.split(","):
        words = part.split()
        if len(words) == 1:
            found.add(words[0])
        else:
            found |= {f"{words[0]} {sub}" for sub in words[1].split("/")}
    return found


def documented(text, every):
    """{flag: (shorts, values, meaning, commands)}, and the flags given more than one row."""
    rows, doubled = {}, []
    for flag, short, value, meaning, cell in table_rows(text, "Every flag"):
        flag = ticked(flag)[0]
        if flag in rows:
            doubled.append(flag)
        rows[flag] = (set(ticked(short)), set(ticked(value)), meaning, where(cell, every))
    return rows, doubled


def actual(tools):
    """{command path: [argument]} for every command of every tool, with
    each argument as {flag, shorts, value, hidden}; the flag is the long
    name, else the short one."""
    found = {}
    for tool in tools:
        def walk(command, path):
            arguments = []
            for argument in command.get("arguments") or []:
                if argument.get("kind") == "positional":
                    continue
                names = argument.get("names") or []
                longs = ["--" + n["name"] for n in names if n["kind"] == "long"]
                shorts = {"-" + n["name"] for n in names if n["kind"] == "short"}
                arguments.append({"flag": longs[0] if longs else sorted(shorts)[0], "shorts": shorts,
                                  "value": argument.get("valueName") if argument.get("kind") == "option" else None,
                                  "hidden": not argument.get("shouldDisplay", True)})
            found[path] = arguments
            for sub in command.get("subcommands") or []:
                if sub["commandName"] != "help":
                    walk(sub, f"{path} {sub['commandName']}")
        walk(dump_help(tool), tool)
    return found


def vocabulary_problems(text, found):
    """Every way the tools (`found`, as `actual` gives it) and the table disagree."""
    problems = []
    rows, doubled = documented(text, found)
    for flag in doubled:
        problems.append(f"{flag} has more than one row: one name, one meaning")
    deprecated = {(ticked(flag)[0], cell): ticked(instead)[0]
                  for flag, cell, instead in table_rows(text, "Deprecated names")}
    taken = {(ticked(short)[0], ticked(flag)[0]): where(cell, found)
             for short, flag, cell in table_rows(text, "Short letters taken for something else")}
    letters = defaultdict(set)  # short letter -> {(long flag, command)}
    for path, arguments in sorted(found.items()):
        for a in arguments:
            flag = a["flag"]
            if a["hidden"]:
                if (flag, path) not in deprecated:
                    problems.append(f"{path}: hidden {flag} is not under 'Deprecated names'")
                continue
            for short in a["shorts"]:
                letters[short].add((flag, path))
            row = rows.get(flag)
            if row is None:
                problems.append(f"{path}: {flag} is not in docs/FLAGS.md")
                continue
            shorts, values, meaning, commands_with = row
            if path not in commands_with:
                problems.append(f"{path}: {flag} is in docs/FLAGS.md, but not under this command")
            if a["value"] is not None and a["value"] not in values:
                problems.append(f"{path}: {flag} <{a['value']}> takes a value its row does not name "
                                f"({', '.join(sorted(values)) or 'none'}): a different meaning needs a different flag")
            if flag.startswith("--") and not a["shorts"] <= shorts:
                problems.append(f"{path}: {flag} is spelled {sorted(a['shorts'])}, its row says {sorted(shorts)}")
    for (flag, path), instead in deprecated.items():
        arguments = found.get(path, [])
        if not any(a["flag"] == flag and a["hidden"] for a in arguments):
            problems.append(f"{path}: deprecated {flag} is no longer accepted (or no longer hidden)")
        if not any(a["flag"] == instead and not a["hidden"] for a in arguments):
            problems.append(f"{path}: {instead}, which replaces {flag}, is missing")
    for flag, (_, _, _, commands_with) in sorted(rows.items()):
        for path in sorted(commands_with):
            if not any(a["flag"] == flag and not a["hidden"] for a in found.get(path, [])):
                problems.append(f"{path}: docs/FLAGS.md lists {flag} under this command, which does not have it")
    # Each short letter has one home, the long flag it stands for; a command
    # may have given it to another flag only as 'Short letters taken' lists.
    for short, uses in sorted(letters.items()):
        homes = {flag for flag, row in rows.items() if short in row[0] and (short, flag) not in taken}
        homes |= {short} & rows.keys()  # a short-only flag (-X)
        if len(homes) > 1:
            problems.append(f"{short} stands for {' and '.join(sorted(homes))} in docs/FLAGS.md")
        for flag, path in sorted(uses):
            if flag not in homes and path not in taken.get((short, flag), set()):
                problems.append(f"{path}: {short} is {flag} here but {' / '.join(sorted(homes)) or 'nothing'} in "
                                f"docs/FLAGS.md, and 'Short letters taken for something else' does not say so")
    for path, arguments in sorted(found.items()):
        flags = {a["flag"]: a for a in arguments}
        if "--dry-run" in flags and "-n" not in flags["--dry-run"]["shorts"]:
            if not any("-n" in a["shorts"] for a in arguments):
                problems.append(f"{path}: --dry-run without -n, which is free here")
    return problems


@pytest.fixture(scope="module")
def tools():
    return actual(TOOLS)


def test_flags_table_holds_every_flag_once(tools):
    problems = vocabulary_problems(FLAGS_MD.read_text(), tools)
    assert not problems, "docs/FLAGS.md and the tools disagree:\n" + "\n".join(problems)


def test_table_checks_catch_two_meanings(tools):
    """The checks find what the vocabulary was made to prevent (as the tools once had it)."""
    text = FLAGS_MD.read_text()
    def with_argument(path, **argument):
        changed = {p: list(a) for p, a in tools.items()}
        changed[path] = changed[path] + [dict({"shorts": set(), "value": None, "hidden": False}, **argument)]
        return changed
    # mq-dlq redrive --to <topic>, while --to is a position elsewhere:
    # under the command's name in the --to row, or in a row of its own.
    old = with_argument("mq-dlq redrive", flag="--to", value="topic")
    assert any("takes a value its row does not name" in p
               for p in vocabulary_problems(text.replace("| mq-replay, mq-group reset |",
                                                         "| mq-replay, mq-group reset, mq-dlq redrive |"), old))
    second_row = "| `--to` | | `topic` | Where letters go | mq-dlq redrive |\n"
    assert any("more than one row" in p
               for p in vocabulary_problems(text.replace("| `--token-file`", second_row + "| `--token-file`"), old))
    # A new flag the table does not know; -q meaning something other than --quiet.
    assert any("not in docs/FLAGS.md" in p for p in vocabulary_problems(text, with_argument("mq-tail", flag="--new")))
    assert any("-q is --query" in p
               for p in vocabulary_problems(text, with_argument("mq-stat", flag="--query", shorts={"-q"})))
    # mq-dlq purge without --dry-run, mq-replay --dry-run without -n.
    no_purge_dry_run = {p: [a for a in args if not (p == "mq-dlq purge" and a["flag"] == "--dry-run")]
                        for p, args in tools.items()}
    assert any("mq-dlq purge: docs/FLAGS.md lists --dry-run" in p for p in vocabulary_problems(text, no_purge_dry_run))
    no_n = {p: [dict(a, shorts=set()) if (p, a["flag"]) == ("mq-replay", "--dry-run") else a for a in args]
            for p, args in tools.items()}
    assert any("--dry-run without -n" in p for p in vocabulary_problems(text, no_n))
