#!/usr/bin/python
"""Set a host's facts from a fixture instead of gathering them: the render check
(tests/render/render.yml) resolves the roles' variables as on hosts this machine
cannot run (Ubuntu, macOS)."""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={"facts": {"type": "dict", "required": True}},
        supports_check_mode=True,
    )
    module.exit_json(changed=False, ansible_facts=module.params["facts"])


if __name__ == "__main__":
    main()
