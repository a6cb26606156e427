import sys

from sagelab.cli import main

sys.exit(main())
