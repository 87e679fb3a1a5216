import pytest

# The round-trip checks live in harness.py: let pytest explain their failures too.
pytest.register_assert_rewrite("tests.engines.harness")
