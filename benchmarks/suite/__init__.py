"""Pieces of ``make bench`` (``benchmarks/bench.py``): the emulator in its own process (``server``), the tools and
their command lines (``tools``), scenarios and limits (``scenarios``), measuring a run (``measure``) and the
helper programs run as tools (``boto3_copy``, ``engine_list``)."""
