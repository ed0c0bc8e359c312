"""inventories/single (the seed's single box: one host in all four groups) on one lab
container of its own, beside the five-host lab: it converges from nothing, a second run
changes nothing, the dashboard answers through its nginx, a deploy switches the release
(no load balancer to drain: the systemd socket holds connections during the restart),
verify.yml passes. The container is started from nothing and removed at the end by the
`single` fixture (tests/stack/conftest.py). Every playbook here runs with
Ansible's stock strategy (ANSIBLE_STRATEGY=linear), the lab's with Mitogen: both must work.
"""

from __future__ import annotations

import requests

URL = "https://127.0.0.1:8543"


def releases(single) -> dict[str, str]:
    hosts = single.adhoc(
        "appservers",
        "ansible.builtin.uri",
        {"url": "http://{{ lvd_private_address }}:{{ lvd_app_port }}/version"},
    )
    return {host: result["json"]["release"] for host, result in hosts.items()}


def test_single_box_converges_from_nothing(single):
    single.playbook("site-first", "site.yml", "-e", f"app_version={single.v1}")
    assert releases(single) == {"dashboard.example.com": single.v1}


def test_single_box_second_run_changes_nothing(single):
    run = single.playbook("site-second", "site.yml")
    changed = {host: counts for host, counts in run.recap().items() if counts["changed"]}
    assert not changed, f"second run changed something: {changed}\n{run.tail(80)}"


def test_single_box_serves_through_its_nginx(single):
    ca = single.trusted_certificate("dashboard.example.com")
    assert requests.get(f"{URL}/health", verify=ca, timeout=10).status_code == 200
    page = requests.get(f"{URL}/login", verify=ca, timeout=10)
    assert page.status_code == 200 and 'name="csrf"' in page.text
    static = requests.get(f"{URL}/static/dashboard.js", verify=ca, timeout=10)
    assert static.status_code == 200


def test_single_box_deploys_and_verifies(single):
    single.playbook("deploy-v2", "playbooks/deploy.yml", "-e", f"app_version={single.v2}")
    assert releases(single) == {"dashboard.example.com": single.v2}
    single.playbook("verify", "playbooks/verify.yml", "-e", "verify_smoke=true")
