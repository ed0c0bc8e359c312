#!/usr/bin/python
"""Facts of the Linux container that plays the Mac (molecule/macos), as Ansible gathers
them on an Apple Silicon Mac: the OS identity says Darwin/arm64 and macOS's version comes
from `sw_vers` (the stand-in's); memory, CPUs, the user, Python and addresses are the
container's own. Used as the scenario's facts module (ansible_facts_modules)."""

import os
import platform
import pwd
import socket
import subprocess
import sys

from ansible.module_utils.basic import AnsibleModule


def memtotal_mb():
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 0


def own_address():
    # The address of the route to the outside, as Darwin's default_ipv4 reports it.
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))
        return probe.getsockname()[0]
    finally:
        probe.close()


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    version = subprocess.run(
        ["sw_vers", "-productVersion"], capture_output=True, text=True, check=True
    ).stdout.strip()
    user = pwd.getpwuid(os.getuid())
    address = own_address()
    facts = {
        "system": "Darwin",
        "os_family": "Darwin",
        "distribution": "MacOSX",
        "distribution_version": version,
        "distribution_major_version": version.split(".")[0],
        "architecture": "arm64",
        "machine": "arm64",
        "kernel": "23.6.0",
        "service_mgr": "launchd",
        "pkg_mgr": "homebrew",
        "hostname": socket.gethostname().split(".")[0],
        "nodename": socket.gethostname(),
        "fqdn": socket.getfqdn(),
        "memtotal_mb": memtotal_mb(),
        "processor_vcpus": os.cpu_count(),
        "processor_cores": os.cpu_count(),
        "user_id": user.pw_name,
        "user_uid": user.pw_uid,
        "user_gid": user.pw_gid,
        "user_dir": user.pw_dir,
        "user_shell": user.pw_shell,
        "python": {
            "executable": sys.executable,
            "type": platform.python_implementation(),
            "version": dict(
                zip(("major", "minor", "micro", "releaselevel", "serial"), sys.version_info)
            ),
            "version_info": list(sys.version_info),
        },
        "all_ipv4_addresses": [address],
        "all_ipv6_addresses": [],
        "default_ipv4": {"address": address, "interface": "en0"},
        "interfaces": ["lo0", "en0"],
    }
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
