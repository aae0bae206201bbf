"""How many examples a property test that names its own number asks hypothesis for.

``make test-unit`` (``HYPOTHESIS_PROFILE=unit``) is the inner loop, which must stay under a
minute: there a test runs a fifth of its own number, at least 10; ``make test`` (the ``ci``
profile, what CI runs) and any other run take each test's own number.
"""

import os

_SHARE = 5 if os.environ.get("HYPOTHESIS_PROFILE") == "unit" else 1


def examples(n: int) -> int:
    """``n``, or a fifth of it (at least 10) in the inner loop."""
    return n if _SHARE == 1 else max(10, n // _SHARE)
