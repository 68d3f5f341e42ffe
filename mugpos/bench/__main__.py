"""`python -m mugpos.bench`: the same run as `mugpos bench`."""

from mugpos.bench import main

raise SystemExit(main())
