import os
import sys

# Tests import the package from this checkout (python/), where the build puts mantra._C.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
