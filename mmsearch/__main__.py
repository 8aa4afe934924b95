"""`python -m mmsearch ...`: the same CLI as the `mmsearch` script (benchmarks call it this way)."""

from mmsearch.cli.app import main

main()
