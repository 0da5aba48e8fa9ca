"""exp, expm1 and log1p that LLVM can vectorise: why NumPy's transcendentals are hard to beat.

NumPy evaluates ``np.exp`` on a whole array with AVX-512 code: 8 doubles (16 floats) per
instruction. Numba compiles ``math.exp(x)`` to a call into the C library, one element at a
time, and LLVM cannot vectorise a loop around a function call (unless Numba's optional SVML
library is installed). A fused Numba loop that calls ``math.exp`` saves NumPy's temporary
arrays but loses the SIMD: on this project's machines it is about 5x slower per element
than ``np.exp``.

So we write exp the way a vector math library does, from operations LLVM *can* vectorise
(multiply, add, floor, integer shift, bit reinterpretation):

    x = k ln2 + r,   k = round(x / ln2),   |r| <= ln2 / 2
    exp(x)   = 2^k (1 + p(r))             p(r) = expm1(r) = r + r^2/2! + ... (Taylor, Horner form)
    expm1(x) = 2^k p(r) + (2^k - 1)       (no cancellation of 1 + p - 1 near x = 0)

* ``r`` is computed with ln2 split into a high part (few mantissa bits, so ``k ln2_hi`` is
  exact) and a low part (Cody and Waite 1980): r keeps full precision.
* The Taylor polynomial stops at r^13 in float64 and r^7 in float32: the next term is below
  the dtype's rounding error.
* ``2^k`` is built directly from its bits: exponent field k + bias, mantissa 0. Scaling in two
  halves (2^(k/2) 2^(k - k/2)) keeps both factors normal down to the smallest subnormal
  result, so results in the subnormal range round once, as the C library's do.

``log1p_unit(e) = log(1 + e)`` for 0 <= e <= 1 (all that softplus and the BCE loss need, with
e = exp(-|z|)) uses log1p(e) = 2 atanh(s), s = e / (2 + e) in [0, 1/3], and the odd series
atanh(s) = s + s^3/3 + s^5/5 + ... (18 terms in float64, 8 in float32, as s^2 <= 1/9). No
1 + e is ever formed, so tiny e keep their relative precision.

Each function has a float32 and a float64 version, chosen by the argument's type when a
kernel is compiled (``numba.extending.overload``): float32 data is computed in float32, twice
as many lanes per vector instruction. Accuracy: about 1 ulp of the dtype (float64 relative
error below 1e-15; float32 below 3e-7).

GELU needs the normal CDF, so erfc is here too, in the one-formula form of the NumPy reference
(``scratchgen/ops/activations.py`` derives it): erfc(z) = t exp(-zh^2) exp(P(2t - 1) - (z - zh)(z + zh)),
t = 2 / (2 + z), zh = floor(256 z) / 256, with that file's coefficients (26 in float64, 12 in
float32) in Horner form: multiplies, adds, one division, one floor and two of our exps (of
non-positive arguments), all vectorisable. In float32 the split of z^2 is left out (one exp
instead of two, GELU 20% faster): its rounding then costs up to z^2 ulp in erfc's far tail,
where GELU's outputs are below 1e-14. ``normal_cdf``, ``normal_pdf`` and the GELU functions (exact and tanh forms, and
their derivatives) are built on it, with their constants in the argument's precision.

Numba's on-disk cache checks only the timestamp of a kernel's own source file, not of this
one: ``_jit.py`` therefore puts a hash of this file into every cached kernel's name, so that an
edit here recompiles every loop that inlines it.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic, overload

from scratchgen.ops.activations import (ERFC_POLY_32, ERFC_POLY_64, ERFC_Z_MAX, GELU_TANH_CUBIC, GELU_TANH_SCALE,
                                        INV_SQRT_2PI, SQRT_HALF)

from ._jit import inline


@intrinsic
def _float64_from_bits(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64 (C's memcpy trick; a free instruction)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret the low 32 bits of an int64 as a float32."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())

    return types.float32(types.int64), codegen


def _build(F):
    """The scalar functions for float type F (np.float32 or np.float64), as inline Numba functions."""
    single = F is np.float32
    one, half, two, zero, inf = F(1), F(0.5), F(2), F(0), F(np.inf)
    log2e = F(1.4426950408889634)
    if single:
        ln2_hi, ln2_lo = F(0.693359375), F(-2.12194440e-4)  # ln2_hi has 9 significant bits
        exp_max, exp_min = F(88.72283), F(-103.97208)  # overflow to inf above / underflow to 0 below
        flush_below = F(-87.0)  # e^-87 = 1.6e-38 is still a normal float32
        expm1_low, expm1_high = F(-20.0), F(88.0)  # e^x - 1 is -1 in float32 below -20; = e^x above 88
        mantissa_bits, bias = 23, 127
        from_bits = _float32_from_bits
    else:
        ln2_hi, ln2_lo = F(6.93147180369123816490e-01), F(1.90821492927058770002e-10)  # hi: 32 bits
        exp_max, exp_min = F(709.782712893384), F(-745.1332191019412)
        flush_below = F(-708.0)  # e^-708 = 3.3e-308 is still a normal float64
        expm1_low, expm1_high = F(-40.0), F(700.0)
        mantissa_bits, bias = 52, 1023
        from_bits = _float64_from_bits

    @inline
    def pow2(k):
        """2 ** k for an integer k within the normal exponent range, straight from the bits."""
        return from_bits((np.int64(k) + bias) << mantissa_bits)

    if single:
        c2, c3, c4, c5, c6, c7 = (F(1 / math.factorial(n)) for n in range(2, 8))

        @inline
        def expm1_poly(r):
            return r * (one + r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * c7))))))

        t3, t5, t7, t9, t11, t13, t15 = (F(1 / n) for n in (3, 5, 7, 9, 11, 13, 15))

        @inline
        def atanh_series(t):
            return one + t * (t3 + t * (t5 + t * (t7 + t * (t9 + t * (t11 + t * (t13 + t * t15))))))
    else:
        d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13 = (F(1 / math.factorial(n)) for n in range(2, 14))

        @inline
        def expm1_poly(r):
            p = d13 * r + d12
            p = p * r + d11
            p = p * r + d10
            p = p * r + d9
            p = p * r + d8
            p = p * r + d7
            p = p * r + d6
            p = p * r + d5
            p = p * r + d4
            p = p * r + d3
            p = p * r + d2
            return r * (p * r + one)

        q35, q33, q31, q29, q27, q25, q23, q21, q19, q17, q15, q13, q11, q9, q7, q5, q3 = (
            F(1 / n) for n in range(35, 1, -2))

        @inline
        def atanh_series(t):
            s = q35 * t + q33
            s = s * t + q31
            s = s * t + q29
            s = s * t + q27
            s = s * t + q25
            s = s * t + q23
            s = s * t + q21
            s = s * t + q19
            s = s * t + q17
            s = s * t + q15
            s = s * t + q13
            s = s * t + q11
            s = s * t + q9
            s = s * t + q7
            s = s * t + q5
            s = s * t + q3
            return s * t + one

    @inline
    def reduce(x):
        """(k, p): x = k ln2 + r with |r| <= ln2/2 and p = expm1(r).

        k goes from float to int32 first and only then to int64: x86 has no float -> int64
        conversion below AVX-512, so LLVM turned a direct one into 8 scalar conversions per
        vector, while float -> int32 (and int32 -> int64) are single vector instructions. The
        callers clamp x, so |k| < 1100 fits. Measured: float32 GELU forward + backward on
        819,200 elements 7.5 -> 4.2 ms, one thread."""
        k = np.floor(x * log2e + half)
        r = (x - k * ln2_hi) - k * ln2_lo
        return np.int64(np.int32(k)), expm1_poly(r)

    @inline
    def exp(x):
        """e^x: inf above exp_max, 0 below exp_min, NaN stays NaN."""
        # Clamp with comparisons that send NaN to a number (int64(NaN) would be undefined).
        clamped = x if x > exp_min - one else exp_min - one
        clamped = clamped if clamped < exp_max + one else exp_max + one
        k, p = reduce(clamped)
        half_k = k >> 1
        result = (one + p) * pow2(half_k) * pow2(k - half_k)
        if clamped > exp_max:
            result = inf
        if x != x:
            result = x
        return result

    @inline
    def exp_nonpositive(x):
        """e^x for x <= 0 only (softmax's shifted scores x - max): one scaling by 2^k and no
        overflow handling, about 25% cheaper than ``exp``. Results below the smallest normal
        number (x < -87 in float32, -708 in float64) flush to 0; -inf gives 0, NaN stays NaN."""
        clamped = x if x > flush_below else flush_below
        k, p = reduce(clamped)
        result = (one + p) * pow2(k)
        result = result if x > flush_below else zero
        return result if x == x else x

    @inline
    def expm1(x):
        """e^x - 1, accurate near 0 where exp(x) - 1 cancels."""
        clamped = x if x > expm1_low else expm1_low
        clamped = clamped if clamped < expm1_high else expm1_high
        k, p = reduce(clamped)
        scale = pow2(k)
        result = scale * p + (scale - one)
        if x > expm1_high:
            result = exp(x) - one
        if x != x or x == zero:
            result = x  # NaN stays NaN; -0.0 stays -0.0
        return result

    @inline
    def log1p_unit(e):
        """log(1 + e) for 0 <= e <= 1 (the odd atanh series in s = e / (2 + e))."""
        two_s = e * (two / (two + e))  # 2s, written so that a subnormal e is not halved (and lost)
        t = F(0.25) * two_s * two_s
        return two_s * atanh_series(t)

    @inline
    def sigmoid(x):
        """1 / (1 + e^-x) without overflow: with e = e^-|x|, 1/(1+e) for x >= 0 and e/(1+e) below."""
        e = exp(-abs(x))
        numerator = one if x >= zero else e
        return numerator / (one + e)

    @inline
    def softplus(x):
        """log(1 + e^x) = max(x, 0) + log1p(e^-|x|), finite for every finite x."""
        positive = x if x > zero else zero
        return positive + log1p_unit(exp(-abs(x)))

    # ---- erfc, the normal distribution, GELU ---------------------------------------------------
    z_max, sqrt_half, inv_sqrt_2pi = F(ERFC_Z_MAX), F(SQRT_HALF), F(INV_SQRT_2PI)
    tanh_scale, tanh_cubic = F(GELU_TANH_SCALE), F(GELU_TANH_CUBIC)
    split, inv_split = F(256), F(1 / 256)
    if single:
        f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11 = (F(c) for c in ERFC_POLY_32)

        @inline
        def erfc_poly(y):
            p = f11 * y + f10
            p = p * y + f9
            p = p * y + f8
            p = p * y + f7
            p = p * y + f6
            p = p * y + f5
            p = p * y + f4
            p = p * y + f3
            p = p * y + f2
            p = p * y + f1
            return p * y + f0
    else:
        (f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22, f23,
         f24, f25) = (F(c) for c in ERFC_POLY_64)

        @inline
        def erfc_poly(y):
            p = f25 * y + f24
            p = p * y + f23
            p = p * y + f22
            p = p * y + f21
            p = p * y + f20
            p = p * y + f19
            p = p * y + f18
            p = p * y + f17
            p = p * y + f16
            p = p * y + f15
            p = p * y + f14
            p = p * y + f13
            p = p * y + f12
            p = p * y + f11
            p = p * y + f10
            p = p * y + f9
            p = p * y + f8
            p = p * y + f7
            p = p * y + f6
            p = p * y + f5
            p = p * y + f4
            p = p * y + f3
            p = p * y + f2
            p = p * y + f1
            return p * y + f0

    if single:
        @inline
        def erfc_nonnegative(z):
            """erfc(z) for z >= 0 in float32: t exp(P(2t - 1) - z^2), one exponential. Without the
            float64 version's split of z^2 its rounding costs up to z^2 ulp relative in the far
            tail (3e-6 at z = 7, where erfc = 4e-23); GELU's outputs there are below 1e-22."""
            clamped = z_max if z > z_max else z
            t = two / (two + clamped)
            return t * exp_nonpositive(erfc_poly(two * t - one) - clamped * clamped)
    else:
        @inline
        def erfc_nonnegative(z):
            """erfc(z) for z >= 0: t exp(-zh^2) exp(P(2t - 1) - (z - zh)(z + zh)), NaN stays NaN."""
            clamped = z_max if z > z_max else z
            t = two / (two + clamped)
            high = np.floor(clamped * split) * inv_split
            p = erfc_poly(two * t - one) - (clamped - high) * (clamped + high)
            # both exponents are <= 0: P(y) = log(erfc(z) e^{z^2} / t) falls from 0 at z = 0 to
            # log(1 / (2 sqrt pi)) as z -> infinity
            return t * exp_nonpositive(-(high * high)) * exp_nonpositive(p)

    @inline
    def normal_cdf(x):
        """Phi(x) = 0.5 erfc(-x / sqrt 2), from the tail erfc(|x| / sqrt 2) on either side."""
        half_tail = half * erfc_nonnegative(abs(x) * sqrt_half)
        return half_tail if x < zero else one - half_tail

    @inline
    def normal_pdf(x):
        return inv_sqrt_2pi * exp(-half * x * x)

    @inline
    def gelu_tanh_gate(x):
        """sigmoid(2u) = (1 + tanh u) / 2, u = sqrt(2/pi) (x + 0.044715 x^3)."""
        return sigmoid(two * tanh_scale * (x + tanh_cubic * x * x * x))

    @inline
    def gelu_tanh_grad(x):
        s = gelu_tanh_gate(x)
        return s + two * tanh_scale * x * s * (one - s) * (one + F(3) * tanh_cubic * x * x)

    return {"exp": exp, "exp_nonpositive": exp_nonpositive, "expm1": expm1, "log1p_unit": log1p_unit, "sigmoid": sigmoid, "softplus": softplus,
            "erfc_nonnegative": erfc_nonnegative, "normal_cdf": normal_cdf, "normal_pdf": normal_pdf,
            "gelu_tanh_gate": gelu_tanh_gate, "gelu_tanh_grad": gelu_tanh_grad}


_BY_TYPE = {types.float32: _build(np.float32), types.float64: _build(np.float64)}


def _dispatching(name: str):
    """A function callable from Numba code that compiles to the version for its argument's type."""

    def stub(x):
        raise TypeError(f"_math.{name} runs only inside Numba-compiled code")

    @overload(stub, inline="always")
    def choose(x):
        if x in _BY_TYPE:
            implementation = _BY_TYPE[x][name]
            return lambda x: implementation(x)
        return None  # other argument types: "no matching definition" at compile time

    stub.__name__ = stub.__qualname__ = name
    return stub


exp = _dispatching("exp")
exp_nonpositive = _dispatching("exp_nonpositive")
expm1 = _dispatching("expm1")
log1p_unit = _dispatching("log1p_unit")
sigmoid = _dispatching("sigmoid")
softplus = _dispatching("softplus")
erfc_nonnegative = _dispatching("erfc_nonnegative")
normal_cdf = _dispatching("normal_cdf")
normal_pdf = _dispatching("normal_pdf")
gelu_tanh_gate = _dispatching("gelu_tanh_gate")
gelu_tanh_grad = _dispatching("gelu_tanh_grad")
