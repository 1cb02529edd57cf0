"""Every command the documentation shows is one sserd still has: README.md and docs/*.md are read for `sserd ...`
invocations (in code blocks and inline code), and each must name an existing subcommand and only flags that
subcommand takes; the scripts they run (python x.py, bash x.sh) must exist and know the flags given to them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from sserd_cli.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
FLAG = re.compile(r"(?<![\w\-./=])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")
SCRIPT = re.compile(r"\b(?:python|bash)\s+((?:benchmarks|examples)/[\w./-]+\.(?:py|sh))(.*)")


def snippets(text: str) -> list[str]:
    """Command lines of a Markdown text: every line of its code blocks (backslash continuations and the indented
    lines of a usage synopsis joined on), then every inline code span."""
    lines = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            if lines and re.match(r"\s+[\[\-(]", line):  # a usage synopsis wrapped onto indented lines
                lines[-1] += " " + line.strip()
            else:
                lines.append(line)
    return lines + INLINE.findall(FENCE.sub("", text))


def shell_command(tail: str) -> str:
    """The words of one command: up to a comment, `&&`, `;`, a redirect, or a pipe into another program (a `|`
    between flags, as in `(--ref REF | --emotion NAME)`, is a synopsis's "or")."""
    tail = re.split(r"\s#|&&|;|\s>|\|\s*(?=[a-z])", tail)[0]
    return tail


def invocations(text: str) -> list[str]:
    """The words after `sserd` (`$(which sserd)` included) of every invocation in the text."""
    found = []
    for line in snippets(text):
        for match in re.finditer(r"(?<![\w/.-])sserd\)?\s+(?=[a-z])", line):  # a comment's `# or: sserd ...` too
            found.append(shell_command(line[match.end():]))
    return found


def is_group(command) -> bool:
    """A command with subcommands (Typer builds its own click classes, so this looks, not asks the type)."""
    return isinstance(getattr(command, "commands", None), dict)


def resolve(words: str) -> tuple[list[str], object, str]:
    """The subcommand path the words start with, its click command, and the words after it."""
    command, path, rest = typer.main.get_command(app), [], words
    while is_group(command):
        head = re.match(r"\s*([a-z][\w-]*)(?![\w./])(.*)", rest)
        if head is None:
            break  # `sserd eval`, `sserd synth`: a group named, no command run
        name, rest = head.groups()
        assert name in command.commands, f"sserd has no subcommand '{' '.join(path + [name])}' (sserd {words})"
        command = command.commands[name]
        path.append(name)
    return path, command, rest


def flags(command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        names.update(getattr(param, "opts", ()), getattr(param, "secondary_opts", ()))
    return names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_sserd_command_in_the_docs_exists_with_its_flags(doc):
    for words in invocations(doc.read_text()):
        path, command, rest = resolve(words)
        if is_group(command):
            continue  # a group named, no command run
        unknown = [f for f in FLAG.findall(rest) if f not in flags(command)]
        assert not unknown, f"{doc.name}: sserd {' '.join(path)} has no option {', '.join(unknown)} (sserd {words})"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_script_the_docs_run_exists_and_takes_its_flags(doc):
    for line in snippets(doc.read_text()):
        for script, tail in SCRIPT.findall(line):
            path = ROOT / script
            assert path.is_file(), f"{doc.name}: {script} does not exist"
            source = path.read_text()
            for flag in FLAG.findall(shell_command(tail)):
                assert flag in source, f"{doc.name}: {script} takes no {flag}"


# flags the docs give to other programs than sserd and its scripts
OTHER_PROGRAMS = {"--index-url", "--no-deps", "--nproc-per-node"}


def test_every_flag_the_docs_name_belongs_to_something():
    """A flag named anywhere in the docs (prose included) is an option of some sserd command, of a script in
    benchmarks/ or examples/, or of pip / torchrun: a renamed option leaves no stale name behind."""
    known = set(OTHER_PROGRAMS)
    stack = [typer.main.get_command(app)]
    while stack:
        command = stack.pop()
        known |= flags(command)
        stack.extend(getattr(command, "commands", {}).values())
    scripts = " ".join(p.read_text() for d in ("benchmarks", "examples") for p in (ROOT / d).glob("*.[ps][yh]"))
    for doc in DOCS:
        for code in INLINE.findall(doc.read_text()) + FENCE.findall(doc.read_text()):
            stale = {f for f in FLAG.findall(code) if f.startswith("--") and f not in known and f not in scripts}
            assert not stale, f"{doc.name}: {', '.join(sorted(stale))} is no option of sserd or its scripts"


def test_the_docs_are_read():
    """The reader finds what it should: commands in blocks, inline, continued and in a synopsis."""
    text = ("```bash\nsserd edit a.mp4 --emotion happy \\\n   --strength 0.5 -o b.mp4   # a comment --nope\n"
            "sserd info x --json | jq .metrics\n```\n```\nsserd edit SOURCE (--ref REF | --emotion NAME)\n"
            "           [--device D]\n```\nInline: `sserd eval video a.mp4 b.mp4 -e sad` and `torchrun $(which sserd) "
            "train ...`.\n")
    got = [(resolve(words)[0], FLAG.findall(resolve(words)[2])) for words in invocations(text)]
    assert got == [(["edit"], ["--emotion", "--strength", "-o"]), (["info"], ["--json"]),
                   (["edit"], ["--ref", "--emotion", "--device"]), (["eval", "video"], ["-e"]), (["train"], [])]
    assert "--ref" in flags(resolve("edit a.mp4 --ref r.png")[1])
    with pytest.raises(AssertionError, match="no subcommand 'frobnicate'"):
        resolve("frobnicate now")
    with pytest.raises(AssertionError, match="no subcommand 'eval nothing'"):
        resolve("eval nothing a.mp4")
    assert len([c for doc in DOCS for c in invocations(doc.read_text())]) > 40
