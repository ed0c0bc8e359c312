"""sshd as a client meets it: keys only, no root, members of the allowed groups only, modern
algorithms; and the rest of the baseline."""

from conftest import ssh_from


def test_a_member_logs_in_with_a_key_from_an_admin_network(other, address):
    login = ssh_from(other, "ops", address)
    assert login.rc == 0, login.stderr


def test_root_is_refused_even_with_an_authorized_key(other, address):
    login = ssh_from(other, "root", address)
    assert login.rc == 255 and "Permission denied" in login.stderr


def test_a_user_outside_the_allowed_groups_is_refused(other, address):
    login = ssh_from(other, "intruder", address)
    assert login.rc == 255 and "Permission denied" in login.stderr


def test_passwords_are_not_even_offered(other, address):
    login = ssh_from(
        other, "ops", address,
        "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive",
    )  # fmt: skip
    assert login.rc == 255
    assert "Permission denied (publickey)" in login.stderr


def test_an_old_cipher_and_an_old_key_exchange_are_refused(other, address):
    cipher = ssh_from(other, "ops", address, "-c", "aes128-cbc")
    assert cipher.rc == 255 and "no matching cipher" in cipher.stderr
    kex = ssh_from(other, "ops", address, "-o", "KexAlgorithms=diffie-hellman-group14-sha1")
    assert kex.rc == 255 and "no matching key exchange" in kex.stderr


def test_the_settings_in_effect_are_the_roles(host):
    effective = host.check_output("sshd -T")
    for line in (
        "permitrootlogin no",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "allowgroups ssh-users",
        "maxauthtries 3",
        "allowtcpforwarding no",
        "x11forwarding no",
        "macs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com",
    ):
        assert line in effective.splitlines(), line


def test_security_updates_are_installed_daily(host):
    assert 'APT::Periodic::Unattended-Upgrade "1";' in host.check_output(
        "apt-config dump APT::Periodic::Unattended-Upgrade"
    )
    assert host.package("unattended-upgrades").is_installed


def test_the_journal_is_bounded(host):
    config = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "SystemMaxUse=64M" in config
    assert "MaxRetentionSec=1month" in config
