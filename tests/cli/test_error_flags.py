"""Every ``--flag`` that an error message tells the user to pass is an option some vaseg command has."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import typer.main

import visionassist_seg
from visionassist_seg.cli.app import app

SOURCE = Path(visionassist_seg.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# A quoted command of another tool (`pip install torch --index-url ...`, `modal token new`):
# its flags are that tool's, not vaseg's.
QUOTED = re.compile(r"`[^`]*`")


def _without_other_tools(text: str) -> str:
    """Return ``text`` with the quoted commands that are not vaseg's left out (quotes pair left to right)."""
    return QUOTED.sub(lambda m: m.group(0) if m.group(0)[1:].startswith("vaseg") else " ", text)


def registered_flags() -> set[str]:
    """Return every option name of every `vaseg` subcommand (both halves of --x/--no-x pairs)."""
    group = typer.main.get_command(app)
    flags = set()
    for command in group.commands.values():
        for param in command.params:
            flags.update(name for name in (*param.opts, *param.secondary_opts) if name.startswith("--"))
    return flags


def _module_strings(tree: ast.Module) -> dict[str, str]:
    """Return the module-level string constants (``HELP = "..."``), which messages often append."""
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            constants[node.targets[0].id] = _text(node.value, {})
    return constants


def _text(node: ast.AST, constants: dict[str, str]) -> str:
    """Return the literal text of a message expression (f-string parts, concatenations, named constants)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id, "")
    return " ".join(_text(child, constants) for child in ast.iter_child_nodes(node))


def error_messages() -> list[tuple[str, int, str]]:
    """Return (file, line, literal text) of every ``VasegError(...)`` message in the package."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _module_strings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "VasegError" and node.args:
                found.append((str(path.relative_to(SOURCE)), node.lineno, _text(node.args[0], constants)))
    return found


def test_the_scan_finds_the_messages_and_their_flags():
    messages = error_messages()
    assert len(messages) > 50  # the package raises VasegError in many places; an empty scan proves nothing
    assert any("--dataset" in text for _, _, text in messages)
    assert {"--dataset", "--output-dir", "--resume", "--hf-repo", "--amp", "--no-amp"} <= registered_flags()


def test_flags_of_other_tools_quoted_in_a_message_are_not_vasegs():
    text = "Run `pip install torch --index-url URL` first, then `vaseg train --resum X`."
    assert FLAG.findall(_without_other_tools(text)) == ["--resum"]


def test_every_flag_named_in_an_error_message_exists():
    known = registered_flags()
    unknown = [
        f"{path}:{line} names {flag}"
        for path, line, text in error_messages()
        for flag in FLAG.findall(_without_other_tools(text))
        if flag not in known
    ]
    assert not unknown, "error messages name options no command has: " + "; ".join(unknown)


VARIABLE = re.compile(r"\bVASEG_[A-Z0-9_]*[A-Z0-9]")
SETTING = re.compile(r"\[([a-z]+)\] ([a-z_]+)\b(?! section)")


def test_every_setting_and_variable_named_in_an_error_message_exists():
    from visionassist_seg.settings import env_name, setting_names

    names = set(setting_names())
    variables = {env_name(name) for name in names} | {"VASEG_DEBUG", "VASEG_HF_TOKEN"}
    # Settings named in code outside messages too: the resume recipe's option names.
    from visionassist_seg.train.resume import RECIPE_FIELDS

    texts = [(path, line, text) for path, line, text in error_messages()]
    texts += [("train/resume.py", 0, option) for _, option in RECIPE_FIELDS.values()]
    unknown = [
        f"{path}:{line} names {found}"
        for path, line, text in texts
        for found in [*VARIABLE.findall(text), *(f"{a}.{b}" for a, b in SETTING.findall(text))]
        if found not in variables and found not in names
    ]
    assert any(SETTING.search(text) for _, _, text in texts)  # the scan sees section names
    assert not unknown, "error messages name settings that do not exist: " + "; ".join(unknown)
