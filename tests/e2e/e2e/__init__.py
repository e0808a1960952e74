"""Guest-level end-to-end tests for werror/rerror=retry: what is particular
to them, on the shared harness (tests/harness: storage, vm, console,
workload, context, report).

Modules, by job:
  scenarios  one module per family of scenarios, and the run matrix
  runner     the environment of a run.py invocation, one run and its
             clean-up
  torture    the seeded torture on the sanitizer build
  cli        the command line (run.py), the demo
"""
