"""The role's own verify entry point (what playbooks/verify.yml runs in production)
passes on every instance once the schema tests (test_35) left the database at the
release's head: a converge alone leaves the schema to the deploy's schema step."""

from lvd_verify import assert_role_verify_passes


def test_the_role_verify_entry_point_passes():
    assert_role_verify_passes("gunicorn_app")
