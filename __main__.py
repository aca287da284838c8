import sys

from mallocmuzero.cli import main

sys.exit(main())
