#!/usr/bin/env python3
"""Runs the end-to-end tests (tests/e2e/test_*.py, functions test_*(env)).

Prints one line per test and, last, `e2e: N passed, N failed, N skipped`.
Usage: run.py [-k SUBSTRING] [--list]
"""
import argparse
import importlib.util
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402


def discover():
    tests = []
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location(fn[:-3], os.path.join(HERE, fn))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name in getattr(mod, "TESTS", None) or [n for n in dir(mod) if n.startswith("test_")]:
            tests.append(("%s.%s" % (fn[:-3], name), getattr(mod, name)))
    return tests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", action="append", default=[])
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    tests = [t for t in discover() if not args.k or any(k in t[0] for k in args.k)]
    if args.list:
        for name, _ in tests:
            print(name)
        return 0
    passed = failed = skipped = 0
    for name, fn in tests:
        env = harness.Env(name.replace(".", "-"))
        t0 = time.monotonic()
        try:
            fn(env)
            passed += 1
            print("PASS %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
        except harness.Skip as e:
            skipped += 1
            print("SKIP %s: %s" % (name, e), flush=True)
        except Exception as e:  # a failed assertion or a broken harness alike
            failed += 1
            print("FAIL %s (%.1fs): %s" % (name, time.monotonic() - t0, e), flush=True)
            if not isinstance(e, AssertionError):
                traceback.print_exc()
        finally:
            env.cleanup()
    print("e2e: %d passed, %d failed, %d skipped" % (passed, failed, skipped), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
