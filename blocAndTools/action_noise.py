"""The noise eps_t of acting, a_t = tanh(mu + std * eps_t): white (SAC's) or colored along each episode.

Colored noise exploration (Eberhard et al., "Pink Noise Is All You Need", ICLR 2023): each action dimension's
eps_1, eps_2, ... of an episode is one Gaussian sequence whose power spectrum falls as 1/f^beta
(colorednoise.powerlaw_psd_gaussian, Timmer and Koenig 1995), every eps_t still N(0, 1). beta 0 is white noise,
i.i.d. draws; the larger beta, the longer the noise keeps one sign, so that the policy holds a deviation from its
mean (an engine off, a lean) for many steps instead of dithering around it: 1 pink, 2 red (Brownian-like).
"""
from __future__ import annotations

import colorednoise
import numpy as np


class ActionNoise:
    """eps_t for one acting environment, from `rng` (the run's action-noise stream, checkpointed by its owner).

    beta 0 draws rng.standard_normal(act_dim) at each step: the same numbers as drawing eps with the action.
    beta > 0 draws a sequence of `horizon` steps (the time limit) at the episode's first sample and a new one if
    the episode outlasts it; reset() at each episode's start. Nothing is drawn while nothing is sampled (the
    random warm-up), and a resumed run, which starts a fresh episode, needs no state besides rng's.
    """

    def __init__(self, beta: float, act_dim: int, horizon: int | None, rng: np.random.Generator,
                 dtype: type = np.float32) -> None:
        self.beta, self.act_dim, self.rng, self.dtype = beta, act_dim, rng, dtype
        self.horizon = max(horizon or 1000, 2)  # no time limit: sequences of 1,000 steps, one after the other
        self._std = np.sqrt(library_variance(beta, self.horizon))
        self._sequence: np.ndarray | None = None  # (horizon, act_dim) of this episode, beta > 0
        self._t = 0

    def reset(self) -> None:
        """A new episode: its colored sequence is drawn at its first sample."""
        self._sequence = None

    def sample(self) -> np.ndarray:
        """eps_t, shape (act_dim,)."""
        if self.beta == 0:
            return self.rng.standard_normal(self.act_dim, dtype=self.dtype)
        if self._sequence is None or self._t == self.horizon:
            # the last axis is time: act_dim independent sequences of horizon steps
            noise = colorednoise.powerlaw_psd_gaussian(self.beta, (self.act_dim, self.horizon), random_state=self.rng)
            self._sequence, self._t = (noise.T / self._std).astype(self.dtype), 0
        self._t += 1
        return self._sequence[self._t - 1]


def library_variance(beta: float, horizon: int) -> float:
    """Var(eps_t) of colorednoise.powerlaw_psd_gaussian(beta, horizon) (2.2), which scales to unit variance without
    its zero frequency and with a quarter of an even horizon's Nyquist term: 1.07 for pink noise at 1,000 steps,
    1.30 for red; ActionNoise divides by its square root.

    The series is irfft of coefficients with power s_k^2 = max(f_k, 1/T)^-beta; a real coefficient (f = 0, and
    f = 1/2 for an even T, drawn with sqrt(2) magnitude) adds 2 s_k^2 / T^2 to each step's variance, a complex one
    4 s_k^2 / T^2.
    """
    power = np.maximum(np.fft.rfftfreq(horizon), 1 / horizon) ** -beta
    real = np.zeros(power.shape, bool)
    real[0], real[-1] = True, horizon % 2 == 0
    variance = np.sum(np.where(real, 2, 4) * power)  # times T^2
    scaled_by = 4 * power[1:].sum() - (3 * power[-1] if horizon % 2 == 0 else 0)  # the library's sigma^2, times T^2
    return float(variance / scaled_by)
