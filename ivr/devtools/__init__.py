"""Tools for tests, benchmarks and ``make pbx``: the test PBX and sipp helpers.

Kept apart from the product's transports: a deployment never imports these.
"""
