"""Label matchers, written as Alertmanager writes them: ``name="value"``, ``name!=value``,
``name=~regex`` and ``name!~regex`` (a regex matches the whole value).

Used by routes, inhibition rules and silences alike.

>>> m = Matcher.parse('severity=~"warning|critical"')
>>> m.matches({"severity": "critical"}), m.matches({"severity": "info"})
(True, False)
>>> Matcher.parse("model!=churn").matches({})  # an absent label is the empty string
True
>>> str(Matcher.parse("team = risk"))
'team="risk"'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Op = Literal["=", "!=", "=~", "!~"]
_FORM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: Op
    value: str
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Read one matcher; ``ValueError`` says what a matcher looks like."""
        found = _FORM.match(text)
        if found is None:
            raise ValueError(
                f"{text!r} is not a matcher: write label=value, label!=value, label=~regex "
                "or label!~regex"
            )
        name, op, value = found.groups()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        pattern = None
        if op in ("=~", "!~"):
            try:
                pattern = re.compile(value)
            except re.error as error:
                raise ValueError(
                    f"{text!r}: {value!r} is not a regular expression: {error}"
                ) from None
        return cls(name, op, value, pattern)  # type: ignore[arg-type]

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self._pattern is not None:
            hit = self._pattern.fullmatch(actual) is not None
            return hit if self.op == "=~" else not hit
        return (actual == self.value) if self.op == "=" else (actual != self.value)

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def parse_all(texts: Iterable[str]) -> tuple[Matcher, ...]:
    return tuple(Matcher.parse(text) for text in texts)


def match_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher matches (no matchers: everything matches)."""
    return all(matcher.matches(labels) for matcher in matchers)
