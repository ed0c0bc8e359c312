"""The role's own verify entry point (what playbooks/verify.yml runs in production)
passes on every instance right after the converge."""

from lvd_verify import assert_role_verify_passes


def test_the_role_verify_entry_point_passes():
    assert_role_verify_passes("backup")
