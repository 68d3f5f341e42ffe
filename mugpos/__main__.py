import sys

from mugpos.cli import main

sys.exit(main())
