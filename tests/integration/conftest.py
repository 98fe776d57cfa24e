"""pytest glue: makes tests/harness importable and provides `sandbox`."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'harness'))

from harness import Sandbox  # noqa: E402


@pytest.fixture(scope='module')
def sandbox():
    """A running Dovecot + Postfix sandbox, shared by one test module."""
    sb = Sandbox().start()
    # Shown with `pytest -s`, and in the captured output of failing tests.
    print('\n[sandbox] %s started in %.2f s, ports %s'
          % (sb.dir, sb.start_seconds, sb.ports), file=sys.stderr)
    yield sb
    sb.stop()
