"""Limits shared by the tests."""

# Seconds a test's subprocess may run before it is called hung. A guard against hangs, not a speed
# target: speed is measured by the benchmarks, which print their figures. Generous, since a 2-core
# machine beside other jobs can be several times slower than an idle one.
HANG_S = 1800
