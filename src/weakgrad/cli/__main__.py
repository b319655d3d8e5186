"""python -m weakgrad.cli"""

from weakgrad.cli import main

main()
