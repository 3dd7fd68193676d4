import sys

from pixelwise.cli import main

sys.exit(main())
