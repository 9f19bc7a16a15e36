"""Malformed calls of every public op and manifold method, run in a child process by
test_fuzz.py (a crash then fails that test instead of killing the runner).

Each case calls one entry point with one argument malformed and sorts the outcome:
  clean    a raise whose message names the argument (or, for the result kinds, a correct result)
  weak     a raise that does not name the argument
  silent   a result where a raise was needed (wrong shape, dtype, device or type accepted)
  nan_hidden  finite output from NaN/Inf input
  wrong    a result that differs from the well-formed call (non-contiguous input)
Prints one JSON line per case: {"case": ..., "outcome": ..., "detail": ...}; the line before a
crash names the case that crashed.
"""

import json
import sys

import torch

import mantra
import mantra.manifolds as mf

torch.manual_seed(0)
D = torch.float64

# (manifold, the shape of one valid point batch)
MANIFOLDS = [
    ("Stiefel", mf.Stiefel(), (2, 5, 3)),
    ("SO", mf.Stiefel(special=True), (2, 3, 3)),
    ("Grassmannian", mf.Grassmannian(), (2, 5, 2)),
    ("Sphere", mf.Sphere(), (2, 4)),
    ("Oblique", mf.Oblique(), (2, 4, 3)),
    ("FixedRank", mf.FixedRank(2), (2, 4, 3)),
    ("FixedRankPSD", mf.FixedRankPSD(2), (2, 4, 4)),
    ("GLPlus", mf.GLPlus(3), (2, 3, 3)),
    ("SL", mf.SL(3), (2, 3, 3)),
    ("SPD", mf.SPD(), (2, 3, 3)),
    ("Lorentz", mf.Lorentz(), (2, 4)),
    ("PoincareBall", mf.PoincareBall(), (2, 3)),
    ("Euclidean", mf.Euclidean(), (2, 3)),
]

# Manifolds whose points have one shape (square, or a fixed size): a wrong shape alone is bad.
FIXED_SHAPE = {"SO", "FixedRankPSD", "GLPlus", "SL", "SPD"}

# Method -> the names of its tensor arguments after self (X first).
METHODS = {
    "proj_tangent": ("X", "G"),
    "egrad_to_rgrad": ("X", "G"),
    "retract": ("X", "V"),
    "transport": ("X", "Y", "V"),
    "inner": ("X", "U", "V"),
    "project": ("X",),
    "check_point": ("X",),
}


def emit(case, outcome, detail=""):
    print(json.dumps({"case": case, "outcome": outcome, "detail": str(detail)[:300]}), flush=True)


def names_argument(message, arg):
    return f"'{arg}'" in message or f"argument {arg}" in message or f"`{arg}`" in message


def finite_result(r):
    if isinstance(r, torch.Tensor):
        return bool(torch.isfinite(r).all()) if r.is_floating_point() else True
    if isinstance(r, (tuple, list)):
        return all(finite_result(t) for t in r)
    return True


def valid_args(M, shape, method):
    X = M.random(*shape, dtype=D)
    G = torch.randn(shape, dtype=D)
    V = M.proj_tangent(X, G) * 0.1
    if method == "transport":
        return [X, M.retract(X, V), V]
    if method == "inner":
        return [X, V, V]
    return [X, V][: len(METHODS[method])]


def malformations(shape, arg_is_point):
    """(kind, function of a valid tensor -> malformed value, expectation)."""
    n = len(shape)
    out = [
        ("rank0", lambda t: t.reshape(-1)[0], "raise"),
        ("wrong_shape", lambda t: torch.cat([t, t[..., :1]], dim=-1), "raise"),
        ("int64", lambda t: t.round().long(), "raise"),
        ("bool", lambda t: t > 0, "raise"),
        ("complex", lambda t: t.to(torch.complex128), "raise"),
        ("float16", lambda t: t.half(), "raise_or_result"),
        ("nan", lambda t: t.clone().index_put_((torch.tensor([0]),), torch.tensor(float("nan"), dtype=t.dtype)),
         "nan_or_raise"),
        ("inf", lambda t: t.clone().index_put_((torch.tensor([0]),), torch.tensor(float("inf"), dtype=t.dtype)),
         "nan_or_raise"),
        ("empty_batch", lambda t: t[:0], "result"),
        ("non_contiguous", lambda t: t.transpose(0, -1).contiguous().transpose(0, -1), "same"),
        ("meta_device", lambda t: t.to("meta"), "raise"),
        ("list", lambda t: t.tolist(), "raise"),
        ("string", lambda t: "X", "raise"),
        ("none", lambda t: None, "raise"),
    ]
    if n < 2:
        out = [m for m in out if m[0] != "non_contiguous"]
    return out


def run_manifold_cases():
    for label, M, shape in MANIFOLDS:
        for method, names in METHODS.items():
            for i, arg in enumerate(names):
                for kind, malform, expect in malformations(shape, i == 0):
                    case = f"{label}.{method}({arg}: {kind})"
                    args = valid_args(M, shape, method)
                    good = list(args)  # the well-formed call, for the cases compared with it
                    try:
                        bad = malform(args[i])
                    except Exception:  # the malformation does not apply to this argument
                        continue
                    if kind == "wrong_shape" and len(names) == 1 and label not in FIXED_SHAPE:
                        continue  # points of any size: one argument alone has no wrong shape
                    if kind == "rank0" and len(names) == 1 and label == "Euclidean":
                        continue  # each entry is a point: 0-D is valid
                    if kind == "meta_device" and len(names) == 1:
                        expect = "result"  # all on meta: a meta result of the right shape
                    if kind == "empty_batch":
                        args = [a[:0] for a in args]
                    elif kind == "non_contiguous":
                        args = [malform(a) for a in args]
                    else:
                        args[i] = bad
                    compare = kind in ("nan", "inf", "non_contiguous")
                    classify(case, lambda: getattr(M, method)(*args), arg, expect,
                             (lambda: getattr(M, method)(*good)) if compare else None)


def kind_of(case):
    return case.rsplit(": ", 1)[-1].rstrip(")")


def classify(case, call, arg, expect, reference=None):
    try:
        r = call()
    except (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError) as e:
        msg = str(e)
        if expect in ("result", "same"):
            emit(case, "weak", "raised on valid input: " + msg.splitlines()[0])
        elif names_argument(msg, arg):
            emit(case, "clean")
        else:
            emit(case, "weak", msg.splitlines()[0] if msg else type(e).__name__)
        return
    except Exception as e:  # anything else is not a clean error
        emit(case, "weak", f"{type(e).__name__}: {e}")
        return
    if expect == "raise" and isinstance(r, str):  # check_point answers with the reason
        emit(case, "clean" if r else "silent", r or "accepted as a point")
    elif expect == "raise":
        emit(case, "silent", "no error")
    elif expect == "nan_or_raise":
        if isinstance(r, str):  # check_point: the reason is the correct result
            emit(case, "clean" if r else "silent", r or "accepted a non-finite point")
        elif finite_result(r):
            # Finite is right only where the result does not depend on that argument (e.g. the
            # Euclidean-metric inner product ignores X): it must equal the well-formed call's.
            ref = reference() if reference else None
            same = ref is not None and isinstance(r, torch.Tensor) and r.shape == ref.shape and torch.equal(r, ref)
            emit(case, "clean" if same else "nan_hidden", "" if same else "finite output")
        else:
            emit(case, "clean")
    elif expect == "same":
        ref = reference()
        same = (torch.equal(r, ref) if isinstance(r, torch.Tensor) and r.dtype == torch.bool else
                (r == ref) if isinstance(r, str) else (r - ref).abs().max().item() <= 1e-10)
        emit(case, "clean" if same else "wrong", "" if same else "differs from the contiguous call")
    elif kind_of(case) == "meta_device":
        ok = isinstance(r, torch.Tensor) and r.is_meta or isinstance(r, str) and r != ""
        emit(case, "clean" if ok else "wrong", "" if ok else f"meta input gave {type(r).__name__}")
    else:  # result / raise_or_result: a result is fine
        emit(case, "clean")


def run_op_cases():
    A = torch.randn(3, 4, 4, dtype=D) * 0.3
    G = torch.randn(3, 4, 4, dtype=D)
    u = torch.randn(5, 2, 4, dtype=D)
    h0 = torch.zeros(2, 4, dtype=D)
    W = torch.linalg.qr(torch.randn(4, 4, dtype=D))[0]
    b = torch.zeros(4, dtype=D)
    z = torch.randn(3, 4, dtype=D)
    ops = [
        ("expm", lambda a: mantra.expm(*a), [("A", A)]),
        ("expm_backward", lambda a: mantra.expm_backward(*a), [("grad", G), ("A", A)]),
        ("orthogonal_rnn", lambda a: mantra.ops.orthogonal_rnn(*a),
         [("input", u), ("h0", h0), ("recurrent", W), ("bias", b)]),
        ("modrelu", lambda a: mantra.ops.modrelu(*a), [("z", z), ("bias", b)]),
    ]
    for label, call, named in ops:
        for i, (arg, t) in enumerate(named):
            for kind, malform, expect in malformations(tuple(t.shape), i == 0):
                if kind in ("empty_batch", "non_contiguous", "meta_device"):
                    continue  # the ops' own tests cover these (opcheck, Meta kernels)
                args = [x for _, x in named]
                try:
                    args[i] = malform(args[i])
                except Exception:
                    continue
                classify(f"{label}({arg}: {kind})", lambda: call(args), arg, expect)


if __name__ == "__main__":
    run_manifold_cases()
    run_op_cases()
    emit("done", "done")
    sys.exit(0)
