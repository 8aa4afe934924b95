"""`python -m mmsearch`: the same CLI as the `mmsearch` script (used by subprocess tests)."""

from mmsearch.cli import main

main()
