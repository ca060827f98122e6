"""The benchmark harness behind ``make bench``: workloads, engine drivers, the results table.

Everything here but the drivers uses the standard library only, so that the peers' own
interpreters (moto's virtual environment) can import it.
"""
