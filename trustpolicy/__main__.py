import sys

from trustpolicy.cli import main

sys.exit(main())
