"""Statistics behind the analytics, scalar and vectorised over many groups at once.

The beacon score follows the maths RITA (Active Countermeasures) publishes for its beacon
analysis, implemented here from the definitions:

* timestamp score: mean of the Bowley-skew score and the MAD score of the intervals
  between connections (whole seconds, zero intervals dropped);
* data-size score: the same two statistics over the bytes the client sent;
* histogram score: connections per bin over the analysed span (24 bins): the larger of
  the coefficient-of-variation score (a flat histogram is regular) and the bimodal-fit
  score (two or three flat levels, e.g. a beacon that slows down at night);
* duration score: the larger of the coverage of the span by the pair and the longest run
  of consecutive non-empty bins (wrapping around) against an ideal run.

Quartiles use the "median of halves" rule: Q2 is the median, Q1 the median of the lower
``n // 2`` values, Q3 the median of the upper ``n // 2`` values (the median itself is left
out of both halves when ``n`` is odd).

The ``segment_*`` functions work on one flat array holding many groups: ``values`` is
sorted by group and, inside a group, by value; ``starts``/``counts`` give each group's
slice.  They cost a few numpy passes whatever the number of groups, so scoring a day of
connections of a whole network is not a Python loop over pairs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

EARTH_RADIUS_KM = 6371.0088

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


# --------------------------------------------------------------------------- scalar forms


def median(values: Sequence[float]) -> float:
    """Median of ``values`` (mean of the two middle values for an even count)."""
    data = sorted(values)
    n = len(data)
    if n == 0:
        raise ValueError("median of no values")
    mid = n // 2
    return float(data[mid]) if n % 2 else (data[mid - 1] + data[mid]) / 2.0


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """Q1, Q2, Q3 by the median-of-halves rule (needs at least 2 values)."""
    data = sorted(values)
    n = len(data)
    if n < 2:
        raise ValueError("quartiles need at least 2 values")
    half = n // 2
    return median(data[:half]), median(data), median(data[n - half :])


def bowley_skewness(values: Sequence[float], min_iqr: float = 0.0) -> float:
    """Bowley (quartile) skewness ``(Q1 + Q3 - 2 Q2) / (Q3 - Q1)``.

    Defined as 0 when the inter-quartile range is below ``min_iqr`` or the median equals a
    quartile: a near-constant series is symmetric for our purpose (a perfect beacon).
    """
    q1, q2, q3 = quartiles(values)
    iqr = q3 - q1
    if iqr < max(min_iqr, 1e-12) or q2 in (q1, q3):
        return 0.0
    return (q1 + q3 - 2.0 * q2) / iqr


def median_absolute_deviation(values: Sequence[float]) -> float:
    """Median of the absolute deviations from the median."""
    m = median(values)
    return median([abs(v - m) for v in values])


def dispersion_score(values: Sequence[float], default: float) -> float:
    """``(median - MAD) / median`` clamped to [0, 1]; ``default`` when the median is below 1."""
    m = median(values)
    if m < 1:
        return default
    score = (m - median_absolute_deviation(values)) / m
    return max(0.0, min(1.0, score))


def regularity_score(values: Sequence[float], min_iqr: float, mad_default: float) -> float:
    """Mean of the skew score ``1 - |Bowley|`` and the dispersion score, rounded to 3 places."""
    skew_score = 1.0 - abs(bowley_skewness(values, min_iqr))
    return round((skew_score + dispersion_score(values, mad_default)) / 2.0, 3)


def coefficient_of_variation_score(counts: Sequence[int]) -> float:
    """``1 - std/mean`` of histogram counts (population std), 0 when the CV exceeds 1."""
    n = len(counts)
    total = sum(counts)
    if n == 0 or total <= 0:
        return 0.0
    mean = total / n
    sd = math.sqrt(sum((c - mean) ** 2 for c in counts) / n)
    cv = sd / mean
    return 0.0 if cv > 1.0 else round(1.0 - cv, 3)


def bimodal_fit_score(counts: Sequence[int], sensitivity: float, outlier_removal: int, min_bins: int) -> float:
    """Share of non-empty bins that fall into the two most common count levels.

    Counts are grouped into levels of width ``ceil(max * sensitivity)`` so that bars of
    nearly the same height form one level; ``outlier_removal`` bars are forgiven.  Zero
    when fewer than ``min_bins`` bins are non-empty.
    """
    bars = [c for c in counts if c > 0]
    if len(bars) < min_bins or not bars:
        return 0.0
    width = math.ceil(max(bars) * sensitivity)
    levels = Counter(int(c // width) for c in bars)
    top = sorted(levels.values(), reverse=True)[:2]
    fit = sum(top) / max(len(bars) - outlier_removal, 1)
    return min(1.0, round(fit, 3))


def longest_circular_run(counts: Sequence[int]) -> int:
    """Longest run of consecutive non-empty bins, wrapping from the last bin to the first."""
    n = len(counts)
    best = run = 0
    for i in range(2 * n):
        if counts[i % n] > 0:
            run += 1
            best = max(best, run)
        else:
            run = 0
    return min(best, n)


def duration_score(
    span_start: float,
    span_end: float,
    first: float,
    last: float,
    counts: Sequence[int],
    min_bins: int,
    ideal_run: int,
) -> float:
    """Larger of coverage ``(last - first) / span`` and ``longest run / ideal_run``, each <= 1.

    Zero when fewer than ``min_bins`` bins are non-empty or the span is empty.
    """
    if span_end <= span_start or sum(1 for c in counts if c > 0) < min_bins:
        return 0.0
    coverage = min(1.0, math.ceil((last - first) / (span_end - span_start) * 1000) / 1000)
    consistency = min(1.0, math.ceil(longest_circular_run(counts) / ideal_run * 1000) / 1000)
    return max(coverage, consistency)


def histogram(times: Sequence[float], span_start: float, span_end: float, bins: int) -> list[int]:
    """Counts of ``times`` in ``bins`` equal bins over [span_start, span_end] (end inclusive)."""
    out = [0] * bins
    step = (span_end - span_start) / bins
    for t in times:
        idx = int((t - span_start) // step) if step > 0 else 0
        out[min(max(idx, 0), bins - 1)] += 1
    return out


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two points given in degrees (mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dphi = p2 - p1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def shannon_entropy(text: str) -> float:
    """Shannon entropy of the characters of ``text`` in bits per character (0 for '')."""
    n = len(text)
    if n == 0:
        return 0.0
    return -sum((c / n) * math.log2(c / n) for c in Counter(text).values())


class Ewma:
    """Exponentially weighted mean and variance of a per-window quantity (bounded: 3 numbers).

    ``alpha`` is the weight of the newest observation.  The first observation sets the
    mean; the variance follows West's incremental form so one spike does not dominate.
    """

    __slots__ = ("alpha", "mean", "n", "var")

    def __init__(self, alpha: float, mean: float = 0.0, var: float = 0.0, n: int = 0) -> None:
        self.alpha = alpha
        self.mean = mean
        self.var = var
        self.n = n

    def update(self, value: float) -> None:
        """Fold one window's value into the baseline."""
        if self.n == 0:
            self.mean, self.var = float(value), 0.0
        else:
            diff = value - self.mean
            incr = self.alpha * diff
            self.mean += incr
            self.var = (1 - self.alpha) * (self.var + diff * incr)
        self.n += 1

    @property
    def std(self) -> float:
        """Standard deviation of the baseline."""
        return math.sqrt(max(self.var, 0.0))

    def threshold(self, sigma: float) -> float:
        """``mean + sigma * std``: values above are anomalous for this entity."""
        return self.mean + sigma * self.std

    def to_state(self) -> list[float]:
        """Compact JSON-able state ``[mean, var, n]``."""
        return [self.mean, self.var, self.n]

    @classmethod
    def from_state(cls, alpha: float, state: Sequence[float]) -> Ewma:
        """Inverse of :meth:`to_state`."""
        return cls(alpha, float(state[0]), float(state[1]), int(state[2]))


# ------------------------------------------------------------------ vectorised (grouped)


def segment_bounds(group_ids: IntArray, n_groups: int) -> tuple[IntArray, IntArray]:
    """Start offset and length of each group in an array sorted by ``group_ids``."""
    counts = np.bincount(group_ids, minlength=n_groups).astype(np.int64)
    starts = np.zeros(n_groups, dtype=np.int64)
    if n_groups > 1:
        np.cumsum(counts[:-1], out=starts[1:])
    return starts, counts


def segment_median(values: FloatArray, starts: IntArray, counts: IntArray) -> FloatArray:
    """Median of each group slice of a group-then-value sorted array (NaN for empty groups)."""
    out = np.full(len(starts), np.nan)
    ok = counts > 0
    s, c = starts[ok], counts[ok]
    mid = s + c // 2
    upper = values[np.minimum(mid, len(values) - 1)] if len(values) else np.zeros(0)
    lower = values[np.maximum(mid - 1, 0)] if len(values) else np.zeros(0)
    out[ok] = np.where(c % 2 == 1, upper, (lower + upper) / 2.0)
    return out


def segment_quartiles(values: FloatArray, starts: IntArray, counts: IntArray) -> tuple[FloatArray, ...]:
    """Q1, Q2, Q3 per group (median-of-halves rule) for a group-then-value sorted array."""
    half = counts // 2
    q1 = segment_median(values, starts, half)
    q2 = segment_median(values, starts, counts)
    q3 = segment_median(values, starts + counts - half, half)
    return q1, q2, q3


def segment_mad(values: FloatArray, group_ids: IntArray, starts: IntArray, counts: IntArray) -> FloatArray:
    """Median absolute deviation per group (values sorted by group then value)."""
    med = segment_median(values, starts, counts)
    dev = np.abs(values - med[group_ids])
    order = np.lexsort((dev, group_ids))
    return segment_median(dev[order], starts, counts)


def segment_regularity(
    values: FloatArray,
    group_ids: IntArray,
    starts: IntArray,
    counts: IntArray,
    min_iqr: float,
    mad_default: float,
) -> dict[str, FloatArray]:
    """Vectorised :func:`regularity_score` with its parts (skew, MAD, median) per group."""
    q1, q2, q3 = segment_quartiles(values, starts, counts)
    iqr = q3 - q1
    valid = (iqr >= max(min_iqr, 1e-12)) & (q2 != q1) & (q2 != q3)
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = np.where(valid, (q1 + q3 - 2.0 * q2) / np.where(valid, iqr, 1.0), 0.0)
    mad = segment_mad(values, group_ids, starts, counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        disp = np.where(q2 >= 1, (q2 - mad) / np.where(q2 >= 1, q2, 1.0), mad_default)
    disp = np.clip(np.nan_to_num(disp, nan=0.0), 0.0, 1.0)
    score = np.round(((1.0 - np.abs(skew)) + disp) / 2.0, 3)
    return {"score": score, "skew": skew, "mad": mad, "median": q2}


def histogram_matrix(
    group_ids: IntArray, times: FloatArray, span_start: float, span_end: float, n_groups: int, bins: int
) -> IntArray:
    """Counts per (group, bin) over [span_start, span_end] as an ``n_groups x bins`` matrix."""
    step = (span_end - span_start) / bins
    if step <= 0:
        idx = np.zeros(len(times), dtype=np.int64)
    else:
        idx = np.clip(((times - span_start) // step).astype(np.int64), 0, bins - 1)
    flat = np.bincount(group_ids * bins + idx, minlength=n_groups * bins)
    return flat.reshape(n_groups, bins).astype(np.int64)


def matrix_cv_score(hist: IntArray) -> FloatArray:
    """Row-wise :func:`coefficient_of_variation_score`."""
    mean = hist.mean(axis=1)
    sd = hist.std(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = np.where(mean > 0, sd / np.where(mean > 0, mean, 1.0), np.inf)
    return np.where(cv > 1.0, 0.0, np.round(1.0 - cv, 3))


def matrix_bimodal_score(hist: IntArray, sensitivity: float, outlier_removal: int, min_bins: int) -> FloatArray:
    """Row-wise :func:`bimodal_fit_score`."""
    n_rows, bins = hist.shape
    if n_rows == 0:
        return np.zeros(0)
    bars = (hist > 0).sum(axis=1)
    width = np.maximum(np.ceil(hist.max(axis=1) * sensitivity), 1.0)
    levels = np.where(hist > 0, (hist // width[:, None]).astype(np.int64), -1)
    levels.sort(axis=1)
    new_run = np.ones_like(levels, dtype=bool)
    new_run[:, 1:] = levels[:, 1:] != levels[:, :-1]
    run_id = np.cumsum(new_run, axis=1) - 1
    rows = np.repeat(np.arange(n_rows), bins)
    weights = (levels >= 0).ravel().astype(np.float64)
    run_counts = np.bincount(rows * bins + run_id.ravel(), weights=weights, minlength=n_rows * bins)
    run_counts = run_counts.reshape(n_rows, bins)
    run_counts.sort(axis=1)
    top_two = run_counts[:, -1] + (run_counts[:, -2] if bins > 1 else 0.0)
    fit = top_two / np.maximum(bars - outlier_removal, 1)
    return np.where(bars >= min_bins, np.minimum(1.0, np.round(fit, 3)), 0.0)


def matrix_longest_run(hist: IntArray) -> IntArray:
    """Row-wise :func:`longest_circular_run`."""
    n_rows, bins = hist.shape
    if n_rows == 0:
        return np.zeros(0, dtype=np.int64)
    full = np.concatenate([hist > 0, hist > 0], axis=1)
    idx = np.arange(2 * bins)
    last_empty = np.maximum.accumulate(np.where(full, -1, idx[None, :]), axis=1)
    runs = idx[None, :] - last_empty
    return np.minimum(runs.max(axis=1), bins)


@dataclass(slots=True, frozen=True)
class BeaconWeights:
    """Scoring knobs of :func:`beacon_scores` (see :class:`~.settings.BeaconSettings`)."""

    ts: float = 0.25
    ds: float = 0.25
    dur: float = 0.25
    hist: float = 0.25
    min_iqr_seconds: float = 10.0
    min_iqr_bytes: float = 10.0
    bins: int = 24
    mode_sensitivity: float = 0.05
    bimodal_outlier_removal: int = 1
    bimodal_min_bins: int = 11
    dur_min_bins: int = 6
    dur_ideal_run: int = 12


def beacon_scores(
    pair_ids: IntArray,
    times: FloatArray,
    sizes: FloatArray,
    n_pairs: int,
    span_start: float,
    span_end: float,
    weights: BeaconWeights,
) -> dict[str, NDArray[np.float64] | IntArray]:
    """Beacon score of every pair at once.

    ``pair_ids`` (0..n_pairs-1), ``times`` (epoch seconds) and ``sizes`` (bytes the client
    sent) are parallel arrays, one entry per connection, in any order.  Returns per-pair
    arrays: ``score``, ``ts_score``, ``ds_score``, ``hist_score``, ``dur_score``,
    ``connections``, ``interval`` (median interval, s), ``interval_mad``, ``interval_skew``,
    ``size`` (median bytes), ``size_mad``, ``size_skew``, ``first``, ``last``, and
    ``scorable`` (at least 4 connections and 3 non-zero intervals).
    """
    pair_ids = np.asarray(pair_ids, dtype=np.int64)
    secs = np.floor(np.asarray(times, dtype=np.float64))
    order = np.lexsort((secs, pair_ids))
    p_sorted, t_sorted = pair_ids[order], secs[order]
    starts, counts = segment_bounds(p_sorted, n_pairs)
    first = np.full(n_pairs, np.nan)
    last = np.full(n_pairs, np.nan)
    has = counts > 0
    first[has] = t_sorted[starts[has]]
    last[has] = t_sorted[starts[has] + counts[has] - 1]

    # intervals between consecutive connections of the same pair, zero intervals dropped
    same = np.zeros(len(t_sorted), dtype=bool)
    if len(t_sorted) > 1:
        same[1:] = p_sorted[1:] == p_sorted[:-1]
    diffs = np.zeros(len(t_sorted))
    if len(t_sorted) > 1:
        diffs[1:] = t_sorted[1:] - t_sorted[:-1]
    keep = same & (diffs > 0)
    iv_pairs, iv = p_sorted[keep], diffs[keep]
    iv_order = np.lexsort((iv, iv_pairs))
    iv_pairs, iv = iv_pairs[iv_order], iv[iv_order]
    iv_starts, iv_counts = segment_bounds(iv_pairs, n_pairs)
    ts = segment_regularity(iv, iv_pairs, iv_starts, iv_counts, weights.min_iqr_seconds, 1.0)

    size_vals = np.asarray(sizes, dtype=np.float64)
    ds_order = np.lexsort((size_vals, pair_ids))
    ds_pairs, ds_vals = pair_ids[ds_order], size_vals[ds_order]
    ds = segment_regularity(ds_vals, ds_pairs, starts, counts, weights.min_iqr_bytes, 0.0)

    hist = histogram_matrix(p_sorted, t_sorted, span_start, span_end, n_pairs, weights.bins)
    hist_score = np.maximum(
        matrix_cv_score(hist),
        matrix_bimodal_score(hist, weights.mode_sensitivity, weights.bimodal_outlier_removal, weights.bimodal_min_bins),
    )
    bars = (hist > 0).sum(axis=1)
    span = span_end - span_start
    coverage = np.minimum(1.0, np.ceil((last - first) / span * 1000) / 1000) if span > 0 else np.zeros(n_pairs)
    consistency = np.minimum(1.0, np.ceil(matrix_longest_run(hist) / weights.dur_ideal_run * 1000) / 1000)
    dur_score = np.where(
        (bars >= weights.dur_min_bins) & (span > 0) & (last > first),
        np.maximum(np.nan_to_num(coverage), consistency),
        0.0,
    )
    scorable = (counts >= 4) & (iv_counts >= 3)
    ts_score = np.where(scorable, ts["score"], 0.0)
    ds_score = np.where(scorable, ds["score"], 0.0)
    total = np.round(
        ts_score * weights.ts + ds_score * weights.ds + dur_score * weights.dur + hist_score * weights.hist, 3
    )
    return {
        "score": np.where(scorable, total, 0.0),
        "ts_score": ts_score,
        "ds_score": ds_score,
        "hist_score": hist_score,
        "dur_score": dur_score,
        "connections": counts,
        "interval": ts["median"],
        "interval_mad": ts["mad"],
        "interval_skew": ts["skew"],
        "size": ds["median"],
        "size_mad": ds["mad"],
        "size_skew": ds["skew"],
        "first": first,
        "last": last,
        "scorable": scorable,
    }
