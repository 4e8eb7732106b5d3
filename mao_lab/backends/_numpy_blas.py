"""BLAS level 1 (axpy, scal) and gemm with beta from the BLAS numpy itself links (ctypes).

The momentum-SGD update is three in-place level-1 passes with it, against four numpy ufunc
passes and a temporary; ``C = alpha*op(A)@op(B) + beta*C`` is one pass over C instead of
numpy's product, scale and add. Using numpy's own BLAS (not a second copy, e.g. SciPy's) matters:
two OpenBLAS thread pools in one process fight over the cores at two threads. Found by
symbol in the shared library numpy bundles (OpenBLAS wheels: ``scipy_cblas_saxpy64_``, or
plain ``cblas_saxpy``); ``load()`` returns None where there is none, and callers keep their
numpy path.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading

import numpy as np

# (prefix, suffix, integer type) of the CBLAS symbols numpy builds are known to export
_SPELLINGS = (("scipy_cblas_", "64_", ctypes.c_int64), ("cblas_", "64_", ctypes.c_int64),
              ("scipy_cblas_", "", ctypes.c_int), ("cblas_", "", ctypes.c_int))
_LOCK = threading.Lock()
_CACHE: list = []


_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _lead(a: np.ndarray) -> int:
    """Leading dimension (elements) of a row-major 2-D matrix with unit column stride, or 0
    when ``a`` is not laid out that way (e.g. a transposed view)."""
    item = a.itemsize
    if a.ndim != 2 or (a.shape[1] > 1 and a.strides[1] != item):
        return 0
    if a.shape[0] <= 1:
        return max(a.shape[1], 1)
    rows = a.strides[0] // item
    return rows if rows * item == a.strides[0] and rows >= max(a.shape[1], 1) else 0


class Blas:
    """axpy (y += a*x) and scal (x *= a) on C-contiguous float32/float64 vectors, gemm on
    row-major matrices (C-contiguous, or column slices of one), and the library's thread
    count (``threads`` / ``set_threads``; 0 and a no-op when it exports no such call)."""

    def __init__(self, funcs: dict[str, object], int_t) -> None:
        self._f, self._int = funcs, int_t

    def gemm(self, a: np.ndarray, b: np.ndarray, c: np.ndarray, trans_a: bool, trans_b: bool,
             alpha: float, beta: float) -> bool:
        """c = alpha * op(a) @ op(b) + beta * c in place; False (nothing done) unless a, b,
        c are row-major matrices of one float dtype (unit column stride, any row stride of
        at least the width) and this library has gemm."""
        f = self._f.get(("s" if c.dtype == np.float32 else "d", "gemm"))
        if f is None or not (a.dtype == b.dtype == c.dtype) or c.dtype.kind != "f" \
                or not c.flags.writeable:
            return False
        lda, ldb, ldc = _lead(a), _lead(b), _lead(c)
        if not (lda and ldb and ldc):
            return False
        m, n = c.shape
        k = a.shape[0] if trans_a else a.shape[1]
        f(_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS,
          m, n, k, alpha, a.ctypes.data, lda, b.ctypes.data, ldb, beta,
          _address(c) if c.flags.c_contiguous else c.ctypes.data, ldc)
        return True

    def threads(self) -> int:
        """The library's current thread count (0 when it cannot tell)."""
        f = self._f.get("get_threads")
        return int(f()) if f is not None else 0

    def set_threads(self, n: int) -> None:
        """Set the library's thread count (process-wide; a no-op when it cannot)."""
        f = self._f.get("set_threads")
        if f is not None:
            f(int(n))

    def axpy(self, a: float, x: np.ndarray, y: np.ndarray) -> None:
        f = self._f["s" if y.dtype == np.float32 else "d", "axpy"]
        f(y.size, a, _address(x), 1, _address(y), 1)

    def axpby(self, a: float, x: np.ndarray, b: float, y: np.ndarray) -> bool:
        """y = a*x + b*y in one pass; False (nothing done) when the library lacks it."""
        f = self._f.get(("s" if y.dtype == np.float32 else "d", "axpby"))
        if f is None:
            return False
        f(y.size, a, _address(x), 1, b, _address(y), 1)
        return True

    def scal(self, a: float, x: np.ndarray) -> None:
        self._f["s" if x.dtype == np.float32 else "d", "scal"](x.size, a, _address(x), 1)


def _address(a: np.ndarray) -> int:
    """Address of a C-contiguous array's first element (5x cheaper than ``a.ctypes.data``
    when the array is writable)."""
    if a.flags.writeable:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    return a.ctypes.data


def _candidates() -> list[str]:
    base = os.path.dirname(os.path.dirname(np.__file__))
    paths = glob.glob(os.path.join(base, "numpy.libs", "*blas*"))
    try:  # a numpy linked against a system BLAS: the library its build names
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
        paths += glob.glob(os.path.join(blas.get("lib directory") or "", "*blas*.so*"))
    except (AttributeError, KeyError, TypeError):
        pass
    return paths


def _bind(path: str) -> Blas | None:
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for prefix, suffix, int_t in _SPELLINGS:
        funcs = {}
        for t, real in (("s", ctypes.c_float), ("d", ctypes.c_double)):
            ax = getattr(lib, f"{prefix}{t}axpy{suffix}", None)
            sc = getattr(lib, f"{prefix}{t}scal{suffix}", None)
            if ax is None or sc is None:
                break
            ax.argtypes = [int_t, real, ctypes.c_void_p, int_t, ctypes.c_void_p, int_t]
            sc.argtypes = [int_t, real, ctypes.c_void_p, int_t]
            ax.restype = sc.restype = None
            funcs[t, "axpy"], funcs[t, "scal"] = ax, sc
            axb = getattr(lib, f"{prefix}{t}axpby{suffix}", None)  # an OpenBLAS extension
            if axb is not None:
                axb.argtypes = [int_t, real, ctypes.c_void_p, int_t, real, ctypes.c_void_p,
                                int_t]
                axb.restype = None
                funcs[t, "axpby"] = axb
        if all((t, op) in funcs for t in "sd" for op in ("axpy", "scal")):
            for t, real in (("s", ctypes.c_float), ("d", ctypes.c_double)):
                g = getattr(lib, f"{prefix}{t}gemm{suffix}", None)
                if g is not None:
                    p = ctypes.c_void_p
                    g.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t,
                                  real, p, int_t, p, int_t, real, p, int_t]
                    g.restype = None
                    funcs[t, "gemm"] = g
            for pre in ("scipy_openblas", "openblas"):
                get = getattr(lib, f"{pre}_get_num_threads{suffix}", None)
                put = getattr(lib, f"{pre}_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.argtypes, get.restype = [], ctypes.c_int
                    put.argtypes, put.restype = [ctypes.c_int], None
                    funcs["get_threads"], funcs["set_threads"] = get, put
                    break
            return Blas(funcs, int_t)
    return None


def load() -> Blas | None:
    """numpy's BLAS level 1, or None (found once per process)."""
    with _LOCK:
        if not _CACHE:
            found = None
            if os.environ.get("MAO_LAB_NUMPY_BLAS", "1") != "0":
                for path in _candidates():
                    found = _bind(path)
                    if found is not None and _works(found):
                        break
                    found = None
            _CACHE.append(found)
        return _CACHE[0]


def _works(blas: Blas) -> bool:
    """A smoke test of the bound symbols (a wrong signature must not go unnoticed)."""
    x = np.arange(1.0, 6.0, dtype=np.float32)
    y = np.ones(5, dtype=np.float32)
    blas.axpy(2.0, x, y)
    blas.scal(0.5, y)
    z = np.ones(5, dtype=np.float64)
    blas.axpy(-1.0, x.astype(np.float64), z)
    ok = np.array_equal(y, (1 + 2 * x) * 0.5) and np.array_equal(z, 1 - x)
    if ok and ("s", "axpby") in blas._f:
        w = np.ones(5, dtype=np.float32)
        if not (blas.axpby(2.0, x, 0.5, w) and np.array_equal(w, 2 * x + np.float32(0.5))):
            blas._f.pop(("s", "axpby"), None)  # the rest stays usable
            blas._f.pop(("d", "axpby"), None)
    if ok and ("s", "gemm") in blas._f:
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        c = np.ones((3, 3), dtype=np.float32)
        ok = blas.gemm(a, a, c, True, False, 2.0, 0.5) and np.array_equal(
            c, 2 * a.T @ a + np.float32(0.5))
        if not ok:
            blas._f.pop(("s", "gemm"), None)  # level 1 stays usable
            blas._f.pop(("d", "gemm"), None)
            ok = True
    return bool(ok)
