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


# --- what an outside auditor asks of a server -------------------------------------------


def test_a_client_sees_the_banner_before_it_logs_in(other, address):
    login = ssh_from(other, "ops", address)
    assert login.rc == 0, login.stderr
    assert "Authorized access only." in login.stderr


def test_sshd_keeps_one_or_two_sessions_per_connection_and_no_compression(host):
    effective = host.check_output("sshd -T").splitlines()
    for line in ("maxsessions 2", "compression no", "tcpkeepalive no", "banner /etc/issue.net"):
        assert line in effective, line
    assert host.file("/etc/ssh/sshd_config").mode == 0o600


def test_a_new_account_gets_password_aging_and_an_idle_timeout(host):
    host.check_output("useradd -m aging-probe")
    try:
        aging = host.check_output("chage -l aging-probe")
        idle = host.check_output("su - aging-probe -s /bin/bash -c 'echo $TMOUT'")
    finally:
        host.run("userdel -r aging-probe")
    assert "Maximum number of days between password change\t\t: 365" in aging
    assert "Minimum number of days between password change\t\t: 1" in aging
    assert idle == "900"


def test_a_login_may_not_write_a_core_dump(other, address):
    login = ssh_from(other, "ops", address, command="ulimit -Sc; ulimit -Hc")
    assert login.rc == 0, login.stderr
    assert login.stdout.split() == ["0", "0"]


def test_storage_and_rare_protocol_modules_are_never_loaded(host):
    rules = host.file("/etc/modprobe.d/base-disabled.conf").content_string.splitlines()
    for module in ("usb-storage", "firewire-core", "dccp", "sctp", "rds", "tipc"):
        assert f"install {module} /bin/false" in rules, module


def test_the_kernel_settings_are_written_for_boot(host):
    settings = host.file("/etc/sysctl.d/60-base-hardening.conf").content_string.splitlines()
    for line in ("kernel.kptr_restrict = 2", "net.ipv4.conf.all.send_redirects = 0", "fs.protected_fifos = 2"):
        assert line in settings, line


def test_needrestart_lists_services_and_never_restarts_them(host):
    assert host.package("needrestart").is_installed
    assert "$nrconf{restart} = 'l';" in host.file("/etc/needrestart/conf.d/50-base.conf").content_string
    # Its batch mode reads the configuration it would act on.
    assert host.run("needrestart -b -r l").rc == 0
