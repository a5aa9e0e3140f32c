"""PyInstaller's entry script: the GUI, or the engine process when run with --engine-host."""

import sys

from app.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
