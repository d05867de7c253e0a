"""``python -m hikitsugi`` = the ``hikitsugi`` command."""

from hikitsugi.cli import main

main()
