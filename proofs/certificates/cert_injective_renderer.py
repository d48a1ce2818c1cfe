"""Certificate for Lemma 6 (proofs/lemma_injective_renderer.md): the identifiable quad renderer
is injective, with a closed-form inverse.

Facts checked (exact):
1. The log-intensity of the blob ``h exp(-1/2 (p - m)^T P (p - m))`` is the quadratic
   ``c0 + c1 x + c2 y + c3 x^2 + c4 x y + c5 y^2`` with ``P = [[-2 c3, -c4], [-c4, -2 c5]]``,
   ``m = P^-1 (c1, c2)``, ``log h = c0 + 1/2 m^T (c1, c2)`` (symbolic ``h, m, P``), and the six
   monomials are linearly independent on every grid of 3 x 3 distinct coordinates (a unisolvent
   6-point subset has a determinant that is a product of coordinate differences): least squares
   over the pixels returns the coefficients exactly.
2. The generator ``A = [[u, w], [w, -u]]`` has ``A^2 = k^2 I``, ``k = sqrt(u^2 + w^2)``, so
   ``E(s) = cosh(s k) I - sinh(s k) / k A`` solves ``E' = -A E``, ``E(0) = I``: it is
   ``expm(-s A)``, and ``P = r^-2 E(1)`` is the renderer's precision matrix.
3. The closed-form inverse: ``det P = r^-4``; with ``t = tr P / 2`` and
   ``d^2 = ((P11 - P22) / 2)^2 + P12^2``: ``t = cosh(k) / r^2``, ``d = sinh(k) / r^2``, the
   eigenvalues ``t +- d = exp(+-k) / r^2``, ``d / t = tanh k`` and ``atanh(tanh k) = k``;
   ``-(k / d) ((P11 - P22) / 2, P12) = (u, w)``. So ``(r, u, w)`` is recovered exactly from
   ``P``: the map is injective on all of ``r > 0, (u, w) in R^2``, with no range restriction;
   and sympy's own ``exp`` of ``-A`` differs at ``w`` and ``w + 2 pi`` (no periodicity).
4. The ranges: every map ``lo + (hi - lo) sigmoid(c)`` is strictly increasing (``hi > lo``);
   the shade and the peak lie in ``(0, 1]``, the peak and the scale are positive, the centre
   stays inside the image.
5. No underflow: every pixel of the blob exceeds ``0.35 exp(-q_max)`` with
   ``q_max = 1/2 * 2 max|p - m|^2 * exp(sqrt(2) s_max) / r_min^2 < 327.9`` (``s_max`` the bound
   of ``|u|`` and ``|w|``), which is above ``1e-143``, far above the smallest normal float64.

falsify(): a rotation generator ``A = [[0, w], [-w, 0]]`` in place of the symmetric one
(``A^2 = -w^2 I``: the exponential is periodic in ``w``, so ``w`` and ``w + 2 pi`` collide) and
a stretch range of ``(-4, 4)`` (the tails underflow).

Run as a script: prints each fact and PASS/FAIL; exit status 1 on any failure.
"""

from __future__ import annotations

import sys

import sympy as sp
from _common import det, inv, is_zero, run  # the certificates directory is on sys.path

R_ = sp.Rational
#: the renderer's ranges (simulations.render.INJECTIVE_RANGES; a test keeps the two equal)
RANGES = {
    "shade": (R_(1, 10), R_(9, 10)),
    "scale": (R_(8, 100), R_(16, 100)),
    "peak": (R_(35, 100), R_(1)),
    "stretch": (R_(-6, 5), R_(6, 5)),
    "centre": (R_(38, 100), R_(62, 100)),
}
SMALLEST_NORMAL = R_(1, 2**1022)


def _checks(rotation: bool, ranges: dict) -> list[tuple[str, bool]]:
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
    # 2. the generator and its exponential
    u, w, s = sp.symbols("u w s", real=True)
    r = sp.symbols("r", positive=True)
    A = sp.Matrix([[0, w], [-w, 0]]) if rotation else sp.Matrix([[u, w], [w, -u]])
    k = sp.sqrt(u**2 + w**2)
    add("A^2 = k^2 I", is_zero(list((A * A).applyfunc(sp.expand) - k**2 * sp.eye(2))))
    E = sp.cosh(s * k) * sp.eye(2) - sp.sinh(s * k) / k * A
    ode = (E.diff(s) + A * E).applyfunc(lambda v: sp.simplify(v.rewrite(sp.exp)))
    add(
        "E(s) = cosh(sk) I - sinh(sk)/k A solves E' = -A E, E(0) = I: E(1) = expm(-A)",
        all(v == 0 for v in ode) and E.subs(s, 0) == sp.eye(2),
    )
    Pr = E.subs(s, 1) / r**2
    # 3. the closed-form inverse; cosh and sinh of k as symbols C, Sh with C^2 - Sh^2 = 1
    C, Sh = sp.symbols("C Sh", positive=True)
    Pc = Pr.subs({sp.cosh(k): C, sp.sinh(k): Sh})

    def on_hyperbola(v) -> bool:
        return sp.simplify(sp.expand(v).subs(C**2, 1 + Sh**2)) == 0

    detP = Pc[0, 0] * Pc[1, 1] - Pc[0, 1] ** 2
    add("det P = r^-4", on_hyperbola(detP * r**4 - 1))
    t = (Pc[0, 0] + Pc[1, 1]) / 2
    half = (Pc[0, 0] - Pc[1, 1]) / 2
    add("t = tr P / 2 = cosh(k) / r^2", sp.simplify(t - C / r**2) == 0)
    add(
        "d^2 = ((P11 - P22)/2)^2 + P12^2 = sinh(k)^2 / r^4",
        sp.simplify(half**2 + Pc[0, 1] ** 2 - Sh**2 / r**4) == 0,
    )
    kk = sp.symbols("k", positive=True)
    ratio = sp.simplify(((1 + sp.tanh(kk)) / (1 - sp.tanh(kk))).rewrite(sp.exp))
    add(
        "atanh(tanh k) = log((1 + tanh k) / (1 - tanh k)) / 2 = k",
        sp.simplify(sp.expand_log(sp.log(ratio) / 2, force=True) - kk) == 0,
    )
    d_ = Sh / r**2  # d > 0: k > 0 and sinh is positive there
    back = [-(k / d_) * half, -(k / d_) * Pc[0, 1]]
    add(
        "-(atanh(d/t) / d) ((P11 - P22)/2, P12) = (u, w)",
        all(sp.simplify(b - v) == 0 for b, v in zip(back, (u, w))),
    )
    eig = sp.Matrix(Pr).subs({u: sp.Rational(3, 5), w: sp.Rational(-4, 5), r: 2}).eigenvals()
    add(
        "eigenvalues t +- d = exp(+-k) / r^2 (u = 3/5, w = -4/5, r = 2)",
        {sp.simplify(v) for v in eig} == {sp.exp(1) / 4, sp.exp(-1) / 4},
    )
    # the exponential itself (sympy's, not the closed form) at two points 2 pi apart in w
    at = [(-A.subs({u: 0, w: v})).exp() for v in (R_(1, 3), R_(1, 3) + 2 * sp.pi)]
    gap = (at[1] - at[0]).applyfunc(sp.simplify)
    add(
        "expm(-A) at w = 1/3 and w = 1/3 + 2 pi differ: no periodic collision",
        any(v != 0 for v in gap),
    )
    # 4. the ranges
    c = sp.symbols("c", real=True)
    sig = 1 / (1 + sp.exp(-c))
    slope = sp.simplify(sp.diff(sig, c) - sig * (1 - sig)) == 0
    add(
        "each lo + (hi - lo) sigmoid(c) is strictly increasing",
        slope and all(bool(hi > lo) for lo, hi in ranges.values()),
    )
    inside = [
        ranges["shade"][0] > 0,
        ranges["shade"][1] < 1,
        ranges["peak"][0] > 0,
        ranges["peak"][1] <= 1,
        ranges["scale"][0] > 0,
        ranges["centre"][0] > 0,
        ranges["centre"][1] < 1,
    ]
    add("values in (0, 1], positive width and peak, centre inside", all(bool(v) for v in inside))
    # 5. no underflow: |p - m| < max(hi_c, 1 - lo_c) per coordinate (pixel centres in (0, 1)),
    # lambda_max(P) = exp(k) / r^2 with k <= sqrt(2) max|u|, |w|
    lo_c, hi_c = ranges["centre"]
    far = max(hi_c, 1 - lo_c)
    k_max = sp.sqrt(2) * max(abs(v) for v in ranges["stretch"])
    q_max = R_(1, 2) * 2 * far**2 * sp.exp(k_max) / ranges["scale"][0] ** 2
    smallest = ranges["peak"][0] * sp.exp(-q_max)
    add(f"q_max = {float(q_max):.2f} < 327.9", q_max < R_(3279, 10))
    add(
        "every blob pixel > 1e-143 > the smallest normal float64",
        bool(smallest > R_(1, 10**143)) and bool(R_(1, 10**143) > SMALLEST_NORMAL),
    )
    return facts


def certify() -> list[tuple[str, bool]]:
    """Every fact of Lemma 6 on the renderer's generator and ranges; all must be True."""
    return _checks(False, RANGES)


def falsify() -> list[tuple[str, bool]]:
    """The same with a rotation generator (periodic) and a stretch range of (-4, 4)."""
    return _checks(True, RANGES | {"stretch": (R_(-4), R_(4))})


def main() -> int:
    return run(certify, falsify)


if __name__ == "__main__":
    sys.exit(main())
