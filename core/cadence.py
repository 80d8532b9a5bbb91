"""How often to take an expensive measurement during training so that it costs a fixed share
of training time: interval = ceil(seconds per measurement / (budget x seconds per step)).

The noise-scale tracker (core.noise_scale) and the sharpness tracker (core.sharpness) both
measure "every few steps" this way; ``Cadence`` is the bookkeeping they share.
"""

from __future__ import annotations

import math
import time

__all__ = ["Cadence"]


class Cadence:
    """Steps between measurements, chosen from measured times.

    Parameters
    ----------
    budget : share of training time measuring may take
    interval : a fixed number of steps between measurements instead (tests, benchmarks)
    max_interval : steps between measurements at most
    clock : seconds (a fake one in tests)

    Use: ``due(last_step_seconds)`` once per training step; when it is True, measure and pass
    the seconds spent to ``measured``. ``request()`` makes the next step due whatever the
    interval; ``reset()`` starts over (due at once).
    """

    def __init__(
        self,
        budget: float,
        interval: int | None = None,
        max_interval: int = 100_000,
        clock=time.perf_counter,
    ) -> None:
        self.budget = budget
        self.fixed_interval = interval
        self.max_interval = max_interval
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.interval = 1 if self.fixed_interval is None else self.fixed_interval
        self._due = True
        self._since = 0
        self._cost = 0.0  # seconds per measurement (exponential average)
        self._train = 0.0  # seconds per training step without measuring (idem)
        self._spent = 0.0  # seconds measuring in the previous step
        self.seconds_measuring = 0.0  # totals, for the benchmarks
        self.measurements = 0

    def request(self) -> None:
        """Measure at the next step whatever the interval."""
        self._due = True

    def due(self, last_step_seconds: float = 0.0) -> bool:
        """Note one training step (``last_step_seconds``: the whole previous step, measuring
        included); True when a measurement is due now."""
        if last_step_seconds > 0:
            train = max(last_step_seconds - self._spent, 1e-9)
            self._train = train if self._train == 0 else 0.9 * self._train + 0.1 * train
        self._spent = 0.0
        self._since += 1
        return self._due or self._since >= self.interval

    def measured(self, seconds: float) -> None:
        """A measurement took ``seconds``: count it and choose the next interval."""
        self._spent = seconds
        self.seconds_measuring += seconds
        self.measurements += 1
        self._cost = seconds if self._cost == 0 else 0.7 * self._cost + 0.3 * seconds
        self._since = 0
        self._due = False
        if self.fixed_interval is None and self._train > 0:
            k = math.ceil(self._cost / (self.budget * self._train))
            self.interval = int(min(max(k, 1), self.max_interval))
