"""The public model names of the OpenAI door, as the upstreams list them, and the route each request takes."""

from __future__ import annotations

from dataclasses import dataclass

from config.upstreams import UpstreamSpec


@dataclass(frozen=True)
class Models:
    """The public model names the OpenAI door answers for, and the route each request takes."""

    default: str  # OPENAI_MODEL: the one listed when no upstream names its own
    named: tuple[str, ...]  # every upstream's `models`; empty: any `model` takes the default route

    @classmethod
    def of(cls, default: str, specs: tuple[UpstreamSpec, ...]) -> Models:
        return cls(default, tuple(dict.fromkeys(m for s in specs for m in s.models)))

    def listed(self) -> list[str]:
        return list(self.named) or [self.default]

    def serves(self, model: str) -> bool:
        """Whether a request naming `model` has a route (any name does while no upstream lists any)."""
        return not self.named or model in self.named

    def route(self, model: str) -> str | None:
        """The route of a request naming `model`: None (all upstreams) unless upstreams list models."""
        return model if self.named else None
