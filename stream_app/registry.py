"""The worker's view of registered models: configuration and reference profile, cached.

Models are registered in SQL (``driftline models register``); a worker looks a model up on
its first event and keeps it for ``refresh_seconds``, so a changed threshold or a new
reference reaches running workers without a restart. An unknown id is remembered as unknown
for the same time, so a stream of events for an unregistered model costs one query, not
one per event.

A deleted model (``storage.catalog.delete_model``) is unregistered here too: its loader
answers :class:`DeletedModel`, :meth:`ModelRegistry.get` answers None as for an unknown id
(its events are dead-lettered, its open windows dropped by stage 2), and
:meth:`ModelRegistry.deletion` says it was deleted, so a dead letter can name the deletion
and an auto-registering worker can leave it deleted. Registering it again restores it
after ``refresh_seconds``.

Reference columns named ``prediction`` and ``score`` are the model's outputs; a column named
``label`` (the ground truth of the reference rows) is left out of the profile. A model
registered without a reference has ``profile=None`` until its first ``baseline_windows``
windows have been turned into one (see :mod:`stream_app.baseline`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from sqlalchemy.exc import SQLAlchemyError

from detectors import ControlLimits, DriftConfig, QualityTask, ReferenceProfile
from detectors.change import EitherJudge, PageHinkley, SeriesJudge
from detectors.profile import NumericProfile
from driftline.errors import IncompatibleStateError, StorageUnavailableError
from registration.profiling import OUTPUT_COLUMNS, drift_config_of
from schemas.model_config import ModelConfig
from schemas.typed_envelope import ModelEnvelopeDecoder
from storage.availability import first_line, is_unavailable
from stream_app.backoff import Backoff
from stream_app.task_checks import TaskCheck


@dataclass(frozen=True)
class ModelRuntime:
    """Everything the stream needs to judge one model's windows."""

    config: ModelConfig
    profile: ReferenceProfile | None
    # Every stored reference of the model as (registered at, epoch seconds; fingerprint),
    # oldest first: which reference a window is judged against (see fingerprint_for).
    history: tuple[tuple[float, str], ...] = ()

    def fingerprint_for(self, window_start: float) -> str | None:
        """The reference a window starting at ``window_start`` is bound to.

        A reference applies to the windows that start at or after it was registered; a
        window already open then keeps the one it began with, in every partition alike,
        since the rule reads data, not the order events arrive in. Windows older than
        every registration use the first reference.
        """
        if self.profile is None:
            return None
        if not self.history:
            return self.profile.fingerprint
        chosen = self.history[0][1]
        for registered_at, fingerprint in self.history:
            if registered_at <= window_start:
                chosen = fingerprint
        return chosen

    @property
    def in_baseline(self) -> bool:
        """No reference yet: windows are sampled to build one."""
        return self.profile is None

    @property
    def model_id(self) -> str:
        return self.config.model_id

    @property
    def window_seconds(self) -> float:
        return float(self.config.window_seconds)

    @property
    def lateness_seconds(self) -> float:
        return float(self.config.allowed_lateness_seconds)

    @property
    def label_horizon_seconds(self) -> float:
        return float(self.config.label_horizon_seconds)

    @cached_property
    def task(self) -> QualityTask | None:
        config = self.config
        if config.task is None:
            return None
        return QualityTask(
            config.task, classes=tuple(config.classes), positive_class=config.positive_class
        )

    @cached_property
    def task_check(self) -> TaskCheck | None:
        """Stage 2's acceptance of labels and predictions, for stage 1 to apply first."""
        return TaskCheck(self.task) if self.task is not None else None

    @cached_property
    def drift_config(self) -> DriftConfig:
        return drift_config_of(self.config)

    def control_limits(self, series: str) -> SeriesJudge:
        # ~50 series are judged per window: build each one's (validated) judge once.
        found = self._limits.get(series)
        if found is None:
            found = self._limits[series] = self._new_judge(series)
        return found

    @cached_property
    def _limits(self) -> dict[str, SeriesJudge]:
        return {}

    def _new_judge(self, series: str) -> SeriesJudge:
        anomaly = self.config.anomaly
        min_std = anomaly.min_std.get(series, _default_min_std(series))
        limits = ControlLimits(
            n_sigma=anomaly.n_sigma,
            window=anomaly.window,
            min_history=anomaly.min_history,
            min_std=min_std,
        )
        if anomaly.quality_detector == "3sigma" or not series.startswith("metric:"):
            return limits
        chart = PageHinkley(
            window=anomaly.window,
            min_history=anomaly.min_history,
            min_std=min_std,
            delta=anomaly.page_hinkley_delta,
            threshold=anomaly.page_hinkley_threshold,
        )
        return chart if anomaly.quality_detector == "page_hinkley" else EitherJudge((limits, chart))

    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        if self.profile is None:
            return tuple(self.config.features)
        return self.profile.features

    @cached_property
    def output_names(self) -> tuple[str, ...]:
        return self.profile.output_columns if self.profile is not None else OUTPUT_COLUMNS

    @cached_property
    def envelope_decoder(self) -> ModelEnvelopeDecoder | None:
        """Decodes this model's envelopes into columns; None while there is no reference."""
        if self.profile is None:
            return None
        numeric = {
            name: column
            for name in self.feature_names
            if isinstance(column := self.profile.columns[name], NumericProfile)
        }
        return ModelEnvelopeDecoder(
            self.model_id,
            numeric=list(numeric),
            categorical=[name for name in self.feature_names if name not in numeric],
            edges=[column.edges_array for column in numeric.values()],
        )


def _default_min_std(series: str) -> float:
    """Floors on sigma, so a series that happened to be very steady does not alarm on noise.

    Rates sit at 0 for long stretches: half a percentage point keeps one stray missing value
    from being a 3-sigma event. PSI of an undrifted feature wobbles around 0.001-0.01: a floor
    of 0.02 puts the limit near the 0.1 warning level instead of at the noise. Metrics and
    shares move by a point or two between windows of a few hundred labels.
    """
    if series.startswith(("missing_rate:", "invalid_rate:", "out_of_range_rate:")):
        return 0.005
    if series.startswith("drift:"):
        return 0.02
    if series.startswith(("metric:", "output_mean:")) or series == "positive_rate":
        return 0.01
    return 0.0


@dataclass(frozen=True)
class DeletedModel:
    """What a loader answers for a model that was deleted: unregistered, but known to be."""

    model_id: str
    deleted_at: datetime

    @property
    def reason(self) -> str:
        """Why an event of the model is dead-lettered."""
        return (
            f"model {self.model_id!r} was deleted at {self.deleted_at.isoformat()}: its events "
            f"are not monitored (restore it with PUT /api/v1/models/{self.model_id} or "
            "`driftline models register`)"
        )


# None: never registered. A loader that knows no deletions answers ModelRuntime | None.
Loader = Callable[[str], ModelRuntime | DeletedModel | None]
ProfileLoader = Callable[[str, str], ReferenceProfile | None]  # (model id, fingerprint)


class ModelRegistry:
    """Cached lookups of :class:`ModelRuntime` by model id.

    The database is read off the event loop, ahead of the batch that needs it
    (:meth:`prefetch`, which waits and retries while the database is down, for stage 1,
    which must know a model to read its events; :meth:`refresh_ahead`, one try, for stage
    2, which goes on with a stale copy meanwhile); :meth:`get` then answers from memory.
    A model that is neither cached nor loaded ahead is loaded on the spot, and a database
    error there becomes :class:`StorageUnavailableError`: the batch is not the message's
    fault and must not be acknowledged.
    """

    def __init__(
        self,
        loader: Loader,
        refresh_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        retry: Backoff | None = None,
        profile_loader: ProfileLoader | None = None,
    ) -> None:
        self._loader = loader
        self._refresh = refresh_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, ModelRuntime | DeletedModel | None]] = {}
        self._retry = retry or Backoff()
        self._profile_loader = profile_loader
        self._bound: dict[tuple[str, str], ModelRuntime] = {}

    def get(self, model_id: str) -> ModelRuntime | None:
        """The model, or None if it is not registered (never was, or was deleted)."""
        now = self._clock()
        cached = self._cache.get(model_id)
        if cached is not None and now - cached[0] < self._refresh:
            return _served(cached[1])
        try:
            loaded = self._loader(model_id)
        except SQLAlchemyError as exc:
            if not is_unavailable(exc):
                raise
            if cached is not None:
                return _served(cached[1])  # stale beats stopping: prefetch refreshes it
            raise StorageUnavailableError(
                f"cannot look up model {model_id!r}: {first_line(exc)}"
            ) from exc
        self._cache[model_id] = (now, loaded)
        return _served(loaded)

    def deletion(self, model_id: str) -> DeletedModel | None:
        """The deletion of a model :meth:`get` answered None for, if it was deleted (read
        from what :meth:`get` or :meth:`prefetch` loaded last; never loads)."""
        cached = self._cache.get(model_id)
        return cached[1] if cached is not None and isinstance(cached[1], DeletedModel) else None

    async def prefetch(self, model_ids: Iterable[str]) -> None:
        """Load the models that are missing or stale, in a thread, retrying until it works."""
        wanted = self._due(model_ids)
        if wanted:
            loaded = await self._retry.run(
                lambda: asyncio.to_thread(self._load_all, wanted),
                f"loading models {', '.join(wanted)}",
            )
            self._keep(loaded)

    async def refresh_ahead(self, model_ids: Iterable[str]) -> None:
        """Load the models that are missing or stale, in a thread, once: what :meth:`get`
        would otherwise read on the event loop. With the database unavailable nothing
        changes, so :meth:`get` still serves a stale copy (or says the storage is down)."""
        wanted = self._due(model_ids)
        if not wanted:
            return
        try:
            loaded = await asyncio.to_thread(self._load_all, wanted)
        except SQLAlchemyError as exc:
            if not is_unavailable(exc):
                raise
            return
        self._keep(loaded)

    def _due(self, model_ids: Iterable[str]) -> list[str]:
        now = self._clock()
        return sorted(
            {
                model_id
                for model_id in model_ids
                if (cached := self._cache.get(model_id)) is None or now - cached[0] >= self._refresh
            }
        )

    def _load_all(self, model_ids: list[str]) -> dict[str, ModelRuntime | DeletedModel | None]:
        return {model_id: self._loader(model_id) for model_id in model_ids}

    def _keep(self, loaded: dict[str, ModelRuntime | DeletedModel | None]) -> None:
        loaded_at = self._clock()
        for model_id, runtime in loaded.items():
            self._cache[model_id] = (loaded_at, runtime)

    async def bound_to(self, runtime: ModelRuntime, fingerprint: str) -> ModelRuntime:
        """``runtime`` judged against the reference ``fingerprint`` (an earlier one, say)."""
        if runtime.profile is not None and runtime.profile.fingerprint == fingerprint:
            return runtime
        key = (runtime.model_id, fingerprint)
        found = self._bound.get(key)
        if found is None or found.config != runtime.config:
            loader = self._profile_loader
            if loader is None:
                raise IncompatibleStateError(
                    f"model {runtime.model_id!r}: reference {fingerprint} is not loadable here"
                )
            profile = await self._retry.run(
                lambda: asyncio.to_thread(loader, runtime.model_id, fingerprint),
                f"loading reference {fingerprint} of {runtime.model_id}",
            )
            if profile is None:
                raise IncompatibleStateError(
                    f"model {runtime.model_id!r} has no stored reference {fingerprint}"
                )
            found = self._bound[key] = ModelRuntime(runtime.config, profile, runtime.history)
        return found

    def put(self, runtime: ModelRuntime) -> None:
        """Make a model known at once (after registering it in this process)."""
        self._cache[runtime.model_id] = (self._clock(), runtime)

    def forget(self, model_id: str) -> None:
        self._cache.pop(model_id, None)


def _served(loaded: ModelRuntime | DeletedModel | None) -> ModelRuntime | None:
    return loaded if isinstance(loaded, ModelRuntime) else None
