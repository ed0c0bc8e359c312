"""Behaviour a user of the role would check, asked of the running host."""


def test_service_answers(host):
    # Replace with the role's own checks: its port answers with its protocol,
    # it runs as its user, the config in effect is the templated one.
    assert host.system_info.distribution == "debian"
