"""Test suite (a package, so test modules can share helpers such as tests.synthetic)."""
