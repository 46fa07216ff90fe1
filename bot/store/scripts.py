"""Lua scripts with named inputs: the contract between a script and the Python that calls it.

Each script binds every KEYS and ARGV entry to a named local on its first lines, one per line, as
rq's scripts do (`local msg = KEYS[1]`, `local now = tonumber(ARGV[1])`, `local ask = ARGV[5] == '1'`),
and a variable tail, if it takes one, to a table (`local parts = {unpack(ARGV, 15)}`). Its Python type
(a subclass of Script) lists the same names in the same order, is called with them by name, and
decodes the script's answer. The two lists are compared when the type is defined, so a script and
its caller cannot drift apart, and no script body reaches KEYS or ARGV by position.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from operator import itemgetter
from typing import Any, ClassVar

import redis

from bot.store.connection import run_script

_BINDING = re.compile(r"^local (\w+) = (?:tonumber\()?(KEYS|ARGV)\[(\d+)\]\)?(?: == '1')?$", re.MULTILINE)
_TAIL = re.compile(r"^local (\w+) = \{unpack\(ARGV, (\d+)\)\}$", re.MULTILINE)
_ANY_USE = re.compile(r"\b(?:KEYS|ARGV)\b")
_RESERVED = {"sent", "idempotent"}  # Script.run's own keywords


class ScriptContractError(TypeError):
    """A script's bindings and its Python type disagree, or a call names the wrong inputs."""


def check_bindings(name: str, lua: str, keys: tuple[str, ...], argv: tuple[str, ...], tail: str = "") -> None:
    """Raise unless `lua` binds exactly `keys`, then `argv`, then `tail`, and uses KEYS/ARGV nowhere else."""
    bound = [(m[1], m[2], int(m[3])) for m in _BINDING.finditer(lua)]
    wanted = [(k, "KEYS", i) for i, k in enumerate(keys, 1)] + [(a, "ARGV", i) for i, a in enumerate(argv, 1)]
    if bound != wanted:
        raise ScriptContractError(f"{name}: the script binds {bound}, its type declares {wanted}")
    tails = [(m[1], int(m[2])) for m in _TAIL.finditer(lua)]
    if tails != ([(tail, len(argv) + 1)] if tail else []):
        raise ScriptContractError(f"{name}: the script binds the tail {tails}, its type declares {tail!r}")
    if len(_ANY_USE.findall(lua)) != len(bound) + len(tails):
        raise ScriptContractError(f"{name}: KEYS or ARGV used outside the bindings at the script's top")
    if _RESERVED & {*keys, *argv}:
        raise ScriptContractError(f"{name}: {sorted(_RESERVED)} are Script.run's own keywords")


class Script:
    """One Lua script, registered on a client: called with its inputs by name, answering decode()."""

    LUA: ClassVar[str]
    KEYS: ClassVar[tuple[str, ...]]
    ARGV: ClassVar[tuple[str, ...]] = ()
    TAIL: ClassVar[str] = ""  # the name of a variable number of trailing ARGV entries, if any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_bindings(cls.__name__, cls.LUA, cls.KEYS, cls.ARGV, cls.TAIL)
        names = (*cls.KEYS, *cls.ARGV)
        pick = itemgetter(*names)  # in C: a call's inputs cost about a microsecond
        cls._pick = staticmethod(pick if len(names) > 1 else lambda named: (pick(named),))

    def __init__(self, client: redis.Redis):
        self.client = client
        self.script = client.register_script(self.LUA)

    def inputs(self, named: dict[str, Any], tail: tuple = ()) -> tuple[list, list]:
        """KEYS and ARGV in the script's order; a last key given as None is left out (optional)."""
        try:
            values = self._pick(named)
        except KeyError:
            values = None
        if values is None or len(values) != len(named) or (tail and not self.TAIL):
            raise ScriptContractError(self._misnamed(named, tail))
        count = len(self.KEYS)
        keys = list(values[:count])
        if keys and keys[-1] is None:
            keys.pop()
        return keys, [*values[count:], *tail]

    def _misnamed(self, named: dict[str, Any], tail: tuple) -> str:
        """Why a call's inputs are not the script's: what it lacks, and what it was given besides."""
        declared = (*self.KEYS, *self.ARGV)
        missing = [name for name in declared if name not in named]
        unknown = sorted(set(named) - set(declared)) + (["a tail"] if tail and not self.TAIL else [])
        return f"{type(self).__name__} needs the inputs {missing} and takes none of {unknown}"

    def __call__(self, *tail: Any, **named: Any) -> Any:
        """Run the script through redis-py (loads it if Redis lacks it; follows a cluster's moves)."""
        keys, args = self.inputs(named, tail)
        return self.decode(self.script(keys=keys, args=args))

    def run(self, *tail: Any, sent: Callable[[], None] = lambda: None, idempotent: bool = True, **named: Any) -> Any:
        """Run the script on the hot path's quick way (connection.run_script; `sent` and
        `idempotent` as there): for the scripts a WeChat message or an API call runs every time."""
        keys, args = self.inputs(named, tail)
        return self.decode(run_script(self.client, self.script, keys, args, sent, idempotent))

    @staticmethod
    def decode(answer: Any) -> Any:
        """The script's answer as its callers use it (as Redis answered, unless a type says)."""
        return answer
