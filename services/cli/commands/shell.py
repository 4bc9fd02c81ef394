"""`shell`: the CLI as a REPL, with history, completion of commands and stream ids, and the profile
and tenant in the prompt.

Each line is an allsource-cli command line without the program name; its options go over the shell's.
`use tenant NAME` (or `-` for none) and `use profile NAME` change what later lines act on.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import replace

import click
from click.shell_completion import ShellComplete
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory

from services.cli.completion import shell_session
from services.cli.context import Invocation, ShellState, pass_invocation
from services.cli.errors import CliError, report
from services.cli.profiles import load_config, profile_names, state_dir
from services.cli.runner import PROG, run_command

BUILTINS = {"use": "use tenant NAME|- / use profile NAME", "exit": "leave the shell", "quit": "leave the shell"}


class ShellCompleter(Completer):
    """Completes commands, options and stream ids through Click's own completion, and the builtins."""

    def __init__(self, root: click.Group) -> None:
        self.complete = ShellComplete(root, {}, PROG, "_ALLSOURCE_CLI_COMPLETE")

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        try:
            words = shlex.split(text)
        except ValueError:
            words = text.split()
        incomplete = "" if not words or text[-1:].isspace() else words.pop()
        if words[:1] == ["use"]:
            yield from self._use(words, incomplete)
            return
        if not words:
            for name, meta in BUILTINS.items():
                if name.startswith(incomplete):
                    yield Completion(name, -len(incomplete), display_meta=meta)
        for item in self.complete.get_completions(words, incomplete):
            yield Completion(item.value, -len(incomplete), display_meta=item.help or "")

    def _use(self, words: list[str], incomplete: str) -> Iterable[Completion]:
        if len(words) == 1:
            choices = ["tenant", "profile"]
        elif words[1] == "profile":
            choices = profile_names(load_config())
        else:
            choices = []
        for choice in choices:
            if choice.startswith(incomplete):
                yield Completion(choice, -len(incomplete))


def prompt_text(state: ShellState) -> str:
    """`allsource PROFILE:TENANT> `, with `-` for no tenant."""
    profile = state.options.resolve_profile()
    return f"allsource {profile.name}:{profile.tenant or '-'}> "


def use(state: ShellState, words: list[str]) -> ShellState:
    """The shell's state after `use tenant NAME|-` or `use profile NAME`."""
    if len(words) != 3 or words[1] not in ("tenant", "profile"):
        raise click.UsageError("use tenant NAME (or - for none), or use profile NAME")
    if words[1] == "tenant":
        options = replace(state.options, tenant="" if words[2] == "-" else words[2])
    else:
        options = replace(state.options, profile=words[2], tenant=None)
    options.resolve_profile()  # an unknown profile is refused here, not on the next command
    return replace(state, options=options)


@click.command("shell")
@click.pass_context
@pass_invocation
def shell(inv: Invocation, ctx: click.Context) -> None:
    """An interactive shell: history, completion (Tab) of commands and stream ids; exit or Ctrl-D leaves."""
    root = ctx.find_root().command
    assert isinstance(root, click.Group)
    history = state_dir() / "shell_history"
    history.parent.mkdir(parents=True, exist_ok=True)
    prompt: PromptSession[str] = PromptSession(
        history=FileHistory(str(history)), completer=ShellCompleter(root), complete_while_typing=False
    )
    state = ShellState(inv.options)
    try:
        while True:
            shell_session.set(state.pool.get(state.options))
            try:
                line = prompt.prompt(prompt_text(state))
            except KeyboardInterrupt:
                continue
            except EOFError:
                return
            try:
                words = shlex.split(line)
            except ValueError as exc:
                click.echo(f"error: {exc}", err=True)
                continue
            if words[:1] == [PROG]:
                words = words[1:]
            if not words:
                continue
            if words[0] in ("exit", "quit"):
                return
            if words[0] == "use":
                try:
                    state = use(state, words)
                except click.UsageError as exc:
                    exc.show()
                except CliError as exc:
                    report(exc)
                continue
            run_command(root, words, state)
    finally:
        state.pool.close()
