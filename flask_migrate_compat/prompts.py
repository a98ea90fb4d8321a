"""Flask-Script's prompt functions, without Flask-Script.

``prompt``, ``prompt_pass``, ``prompt_bool`` and ``prompt_choices`` ask exactly what
Flask-Script 2.0.6's functions of the same names ask, in the same words, and return the
same values, so a command converted from ``manage.py`` to Click (``python -m
flask_migrate_compat convert manage.py``) keeps its dialogue. They read standard input
with :func:`input` (the password with :func:`getpass.getpass`, from the terminal) and
write the question to standard output, as Flask-Script did. New code is better served
by :func:`click.prompt` and :func:`click.confirm`, whose wording differs.
"""
from __future__ import annotations

import getpass
import typing as t

__all__ = ["prompt", "prompt_pass", "prompt_bool", "prompt_choices"]

_YES = ("y", "yes", "1", "on", "true", "t")
_NO = ("n", "no", "0", "off", "false", "f")


def _question(name: str, default: t.Any) -> str:
    # "Name [default]: ", or "Name? " for a question; a false default is not shown.
    text = f"{name} [{default}]" if default else name
    return text + (" " if name.endswith("?") else ": ")


def _ask(read: t.Callable[[str], str], name: str, default: t.Any) -> t.Any:
    question = _question(name, default)
    while True:
        answer = read(question)
        if answer:
            return answer
        if default is not None:
            return default


def prompt(name: str, default: t.Any = None) -> t.Any:
    """Ask for a line of input until one is given.

    :param name: the question (``": "`` is appended, or ``" "`` after a ``?``).
    :param default: returned for an empty answer; ``None`` asks again instead.
    :returns: the answer (``str``), or ``default``.
    :raises EOFError: standard input ended before an answer.
    """
    return _ask(input, name, default)


def prompt_pass(name: str, default: t.Any = None) -> t.Any:
    """Like :func:`prompt`, without echoing the answer (:func:`getpass.getpass`).

    :returns: the answer (``str``), or ``default``.
    """
    return _ask(getpass.getpass, name, default)


def prompt_bool(name: str, default: bool = False,
                yes_choices: t.Sequence[str] | None = None,
                no_choices: t.Sequence[str] | None = None) -> bool:
    """Ask a yes/no question until the answer is one of the known words.

    :param name: the question; the default is shown as its first word (``[y]``/``[n]``).
    :param default: the answer for an empty line.
    :param yes_choices: lower-case words meaning yes (default ``y, yes, 1, on, true,
        t``).
    :param no_choices: lower-case words meaning no (default ``n, no, 0, off, false,
        f``).
    :returns: ``True`` or ``False``.
    """
    yes = yes_choices or _YES
    no = no_choices or _NO
    while True:
        answer = prompt(name, yes[0] if default else no[0])
        if not answer:
            return default
        if answer.lower() in yes:
            return True
        if answer.lower() in no:
            return False


def prompt_choices(name: str, choices: t.Sequence[t.Any], default: t.Any = None,
                   no_choice: t.Sequence[str] = ("none",)) -> str | None:
    """Ask for one of several choices until the answer is one of them.

    :param name: the question; the choices are listed after it.
    :param choices: strings, or ``(key, label)`` pairs whose key is the answer.
    :param default: returned for an empty answer.
    :param no_choice: answers meaning "none of them".
    :returns: the chosen key in lower case, ``default``, or ``None`` for a no-choice
        answer.
    """
    keys, labels = [], []
    for choice in choices:
        if isinstance(choice, str):
            keys.append(choice)
            labels.append(choice)
        else:
            keys.append(choice[0])
            labels.append(f"{choice[1]} [{choice[0]}]")
    while True:
        answer = prompt(f"{name} - ({', '.join(labels)})", default).lower()
        if answer in no_choice:
            return None
        if answer in keys or answer == default:
            return answer
