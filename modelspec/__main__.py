"""`python -m modelspec ...`"""

import sys

from .cli import main

sys.exit(main())
