"""Certificate for Lemma 6 (proofs/lemma_injective_renderer.md): the identifiable quad renderer
is injective, with a closed-form inverse.

Facts checked (exact):
1. The log-intensity of the blob ``h exp(-1/2 (p - m)^T P (p - m))`` is the quadratic
   ``c0 + c1 x + c2 y + c3 x^2 + c4 x y + c5 y^2`` with ``P = [[-2 c3, -c4], [-c4, -2 c5]]``,
   ``m = P^-1 (c1, c2)``, ``log h = c0 + 1/2 m^T (c1, c2)`` (symbolic ``h, m, P``), and the six
   monomials are linearly independent on every grid of 3 x 3 distinct coordinates (a unisolvent
   6-point subset has a determinant that is a product of coordinate differences): least squares
   over the pixels returns the coefficients exactly.
2. ``P = R(theta) diag(1/a^2, 1/b^2) R(theta)^T`` with ``a = r sqrt(rho)``, ``b = r / sqrt(rho)``
   has ``tr P = (rho + 1/rho) / r^2``, ``det P = 1 / r^4``, eigenvalues ``1/a^2, 1/b^2``, and
   ``(P22 - P11, -2 P12) = delta (cos 2 theta, sin 2 theta)`` with
   ``delta = (rho - 1/rho) / r^2``; so ``r = det(P)^(-1/4)``, and for ``rho > 1``
   ``sqrt((P11 - P22)^2 + 4 P12^2) = delta > 0`` and ``rho = (tr P + delta) / (2 sqrt(det P))``.
3. Two angles of the range with the same ``(cos 2 theta, sin 2 theta)`` are equal: their
   difference ``t`` lies in ``(-2 Theta, 2 Theta)``, and ``cos 2t = 1`` has the single solution
   ``t = 0`` there (``solveset``), because the range is shorter than ``pi``. ``P(r, rho, theta)
   = P(r, 1/rho, theta + pi/2)`` identically, which is why the aspect range must exclude
   ``rho <= 1``: checked on the ranges.
4. The ranges: every map ``lo + (hi - lo) sigmoid(c)`` is strictly increasing (``hi > lo``);
   shades and the peak lie in ``(0, 1]``, the peak and the scale are positive, the aspect exceeds
   1, the angle interval is shorter than ``pi``, the centre stays inside the image.
5. No underflow: every pixel of the blob exceeds ``0.35 exp(-q_max)`` with
   ``q_max = 1/2 * 2 max|p - m|^2 * rho_max / r_min^2 < 321``, and that is above ``1e-140``, far
   above the smallest normal float64 ``2^-1022``.

falsify(): the same checks with an angle interval of length ``6 pi / 5``, an aspect range
``(1/2, 2)`` and a scale down to 0.02: the angle is not unique, ``rho`` and ``1/rho`` collide, the
blob's tails underflow.

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import det, inv, is_zero, run, trig_zero  # the certificates directory is on sys.path

R_ = sp.Rational
#: the renderer's ranges (simulations.render.INJECTIVE_RANGES; a test keeps the two equal)
RANGES = {
    "shade": (R_(1, 10), R_(9, 10)),
    "scale": (R_(6, 100), R_(12, 100)),
    "peak": (R_(35, 100), R_(1)),
    "aspect": (R_(3, 2), R_(3)),
    "angle": (-sp.pi / 3, sp.pi / 3),
    "centre": (R_(38, 100), R_(62, 100)),
}
WRONG = RANGES | {
    "angle": (-3 * sp.pi / 5, 3 * sp.pi / 5),
    "aspect": (R_(1, 2), R_(2)),
    "scale": (R_(2, 100), R_(12, 100)),
}
SMALLEST_NORMAL = R_(1, 2**1022)


def _precision(r, rho, theta):
    """``P = R(theta) diag(1/a^2, 1/b^2) R(theta)^T``, ``a^2 = r^2 rho``, ``b^2 = r^2 / rho``."""
    c, s = sp.cos(theta), sp.sin(theta)
    rot = sp.Matrix([[c, -s], [s, c]])
    return rot * sp.diag(1 / (r**2 * rho), rho / r**2) * rot.T


def _checks(ranges) -> list[tuple[str, bool]]:
    facts: list[tuple[str, bool]] = []

    def add(name: str, ok) -> None:
        facts.append((name, bool(ok)))

    x, y, m1, m2, p11, p12, p22 = sp.symbols("x y m1 m2 p11 p12 p22", real=True)
    h = sp.symbols("h", positive=True)
    # 1. the log-intensity is a quadratic, and its coefficients give back (P, m, log h)
    P = sp.Matrix([[p11, p12], [p12, p22]])
    d = sp.Matrix([x - m1, y - m2])
    log_intensity = sp.expand_log(sp.log(h * sp.exp(-(d.T * P * d)[0] / 2)), force=True)
    Pm = P * sp.Matrix([m1, m2])
    c0 = sp.log(h) - (sp.Matrix([[m1, m2]]) * Pm)[0] / 2
    coef = [c0, Pm[0], Pm[1], -p11 / 2, -p12, -p22 / 2]
    quadratic = sum(c * mono for c, mono in zip(coef, [1, x, y, x**2, x * y, y**2]))
    add(
        "log I is the quadratic c0 + c1 x + ... + c5 y^2", sp.expand(log_intensity - quadratic) == 0
    )
    c0, c1, c2, c3, c4, c5 = coef
    P_back = sp.Matrix([[-2 * c3, -c4], [-c4, -2 * c5]])
    m_back = inv(P_back) * sp.Matrix([c1, c2])
    add("P = [[-2 c3, -c4], [-c4, -2 c5]]", is_zero(list(P_back - P)))
    add("m = P^-1 (c1, c2)", is_zero(list(m_back - sp.Matrix([m1, m2]))))
    logh = c0 + (m_back.T * sp.Matrix([c1, c2]))[0] / 2
    add("log h = c0 + m^T (c1, c2) / 2", sp.simplify(logh - sp.log(h)) == 0)
    xs, ys = sp.symbols("x0:3"), sp.symbols("y0:3")
    pts = [(xs[i], ys[j]) for i, j in [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (0, 2)]]
    design = sp.Matrix([[1, a, b, a * a, a * b, b * b] for a, b in pts])
    dd = sp.factor(det(design))
    diffs = {v[i] - v[j] for v in (xs, ys) for i in range(3) for j in range(3) if i != j}
    factors = [f for f, _ in sp.factor_list(dd)[1]]
    add(
        "the design on a 3 x 3 grid has a 6 x 6 minor = product of coordinate differences",
        dd != 0 and all(f in diffs or -f in diffs for f in factors),
    )
    # 2. (r, rho, theta) -> P and back
    r, rho = sp.symbols("r rho", positive=True)
    theta = sp.symbols("theta", real=True)
    Pr = _precision(r, rho, theta)
    cos2, sin2 = sp.cos(theta) ** 2 - sp.sin(theta) ** 2, 2 * sp.sin(theta) * sp.cos(theta)
    delta = (rho - 1 / rho) / r**2
    detP = Pr[0, 0] * Pr[1, 1] - Pr[0, 1] ** 2
    lam = sp.symbols("lam")
    charpoly = lam**2 - Pr.trace() * lam + detP
    target = sp.expand((lam - 1 / (r**2 * rho)) * (lam - rho / r**2))
    add("tr P = (rho + 1/rho) / r^2", trig_zero(Pr.trace() - (rho + 1 / rho) / r**2, theta))
    add("det P = 1 / r^4", trig_zero(detP - 1 / r**4, theta))
    add("eigenvalues of P are 1/a^2, 1/b^2", trig_zero(charpoly - target, theta))
    add("P22 - P11 = delta cos 2 theta", trig_zero(Pr[1, 1] - Pr[0, 0] - delta * cos2, theta))
    add("-2 P12 = delta sin 2 theta", trig_zero(-2 * Pr[0, 1] - delta * sin2, theta))
    spread = (Pr[0, 0] - Pr[1, 1]) ** 2 + 4 * Pr[0, 1] ** 2
    add("(P11 - P22)^2 + 4 P12^2 = delta^2", trig_zero(spread - delta**2, theta))
    add("r = det(P)^(-1/4)", sp.simplify((1 / r**4) ** R_(-1, 4) - r) == 0)
    g = sp.symbols("g", positive=True)  # rho = 1 + g > 1: r^2 rho delta = rho^2 - 1 = g^2 + 2 g
    scaled = sp.expand(sp.cancel(delta * r**2 * rho).subs(rho, 1 + g))
    add("delta > 0 for rho > 1", scaled == g**2 + 2 * g and scaled.is_positive is True)
    rho_back = ((rho + 1 / rho) / r**2 + delta) / (2 / r**2)
    add("rho = (tr P + delta) / (2 sqrt(det P))", sp.simplify(rho_back - rho) == 0)
    # 3. the angle is unique on its range; rho and 1/rho must not both be in range
    lo_t, hi_t = ranges["angle"]
    t, t1, t2 = sp.symbols("t t1 t2", real=True)
    sols = sp.solveset(sp.cos(2 * t) - 1, t, sp.Interval.open(lo_t - hi_t, hi_t - lo_t))
    add("(cos 2 theta, sin 2 theta) determine theta on the range", sols == sp.FiniteSet(0))
    same = sp.cos(2 * t1) * sp.cos(2 * t2) + sp.sin(2 * t1) * sp.sin(2 * t2)
    add(
        "cos 2t1 cos 2t2 + sin 2t1 sin 2t2 = cos 2(t1 - t2)",
        sp.simplify(sp.expand_trig(same - sp.cos(2 * (t1 - t2)))) == 0,
    )
    swapped = _precision(r, 1 / rho, theta + sp.pi / 2).applyfunc(sp.expand_trig)
    add("P(r, rho, theta) = P(r, 1/rho, theta + pi/2) identically", trig_zero(swapped - Pr, theta))
    lo_rho, hi_rho = ranges["aspect"]
    add("the aspect range excludes rho <= 1 (never rho and 1/rho both)", lo_rho >= 1)
    # 4. the ranges
    c = sp.symbols("c", real=True)
    sig = 1 / (1 + sp.exp(-c))
    slope = sp.simplify(sp.diff(sig, c) - sig * (1 - sig)) == 0
    add(
        "each lo + (hi - lo) sigmoid(c) is strictly increasing",
        slope and all(bool(hi > lo) for lo, hi in ranges.values()),
    )
    inside = [
        ranges["shade"][0] > 0, ranges["shade"][1] < 1, ranges["peak"][0] > 0,
        ranges["peak"][1] <= 1, ranges["scale"][0] > 0, ranges["centre"][0] > 0,
        ranges["centre"][1] < 1, hi_t - lo_t < sp.pi,
    ]  # fmt: skip
    add(
        "values in (0, 1], positive widths and peak, angle interval shorter than pi",
        all(bool(v) for v in inside),
    )
    # 5. no underflow: |p - m| < max(hi_c, 1 - lo_c) per coordinate (pixel centres in (0, 1))
    lo_c, hi_c = ranges["centre"]
    far = max(hi_c, 1 - lo_c)
    q_max = R_(1, 2) * 2 * far**2 * hi_rho / ranges["scale"][0] ** 2
    smallest = ranges["peak"][0] * sp.exp(-q_max)
    add(f"q_max = {float(q_max):.2f} < 321", q_max < 321)
    add(
        "every blob pixel > 1e-140 > the smallest normal float64",
        bool(smallest > R_(1, 10**140)) and bool(R_(1, 10**140) > SMALLEST_NORMAL),
    )
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of Lemma 6 on the renderer's ranges; all must be True."""
    return _checks(RANGES)


def falsify() -> list[tuple[str, bool]]:
    """The same with an angle range longer than pi, aspects below 1 and too thin a blob."""
    return _checks(WRONG)


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
