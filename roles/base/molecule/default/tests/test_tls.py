"""The internal CA on the controller, and each instance's own key and certificate."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import address_of, apply_role
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

CA_DIR = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ca"


def ca_certificate():
    return x509.load_pem_x509_certificate((CA_DIR / "ca.crt").read_bytes())


def host_certificate(host):
    return x509.load_pem_x509_certificate(host.file("/etc/ssl/internal/host.crt").content)


def test_the_ca_key_on_the_controller_is_encrypted_and_private():
    key = CA_DIR / "ca.key"
    assert key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert key.stat().st_mode & 0o777 == 0o600
    constraints = ca_certificate().extensions.get_extension_for_oid(
        ExtensionOID.BASIC_CONSTRAINTS
    )
    assert constraints.critical and constraints.value.ca


def test_the_host_key_is_root_s_only_and_the_ca_certificate_is_public(host):
    key = host.file("/etc/ssl/internal/host.key")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    assert host.file("/etc/ssl/internal/ca.crt").content == (CA_DIR / "ca.crt").read_bytes()


def test_the_ca_signed_the_host_certificate_for_its_name_and_address(host):
    certificate = host_certificate(host)
    certificate.verify_directly_issued_by(ca_certificate())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert host.backend.get_hostname() in names.get_values_for_type(x509.DNSName)
    assert address_of(host) in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    lifetime = certificate.not_valid_after_utc - datetime.now(UTC)
    assert timedelta(days=360) < lifetime <= timedelta(days=365)


def test_a_certificate_within_the_renewal_window_is_replaced(host):
    before = host_certificate(host).serial_number
    # Issued for 365 days: with a 400-day window it is due, as one is when the time comes.
    rc, output, recap = apply_role(host, '{"base_tls_renew_days": 400}')
    assert rc == 0, output
    renewed = host_certificate(host)
    assert renewed.serial_number != before
    renewed.verify_directly_issued_by(ca_certificate())
    # Outside the window, a run keeps it.
    rc, output, recap = apply_role(host, "{}")
    assert rc == 0, output
    assert recap.get("changed") == 0, output
    assert host_certificate(host).serial_number == renewed.serial_number


@pytest.mark.parametrize("passphrase", ["not-the-ca-passphrase"])
def test_a_wrong_ca_passphrase_fails_and_the_ca_stays(host, passphrase):
    key_before = (CA_DIR / "ca.key").read_bytes()
    cert_before = host.file("/etc/ssl/internal/host.crt").sha256sum
    rc, output, _ = apply_role(
        host, f'{{"base_tls_ca_passphrase": "{passphrase}", "base_tls_renew_days": 400}}'
    )
    assert rc != 0
    assert "base_tls_ca_passphrase does not open the internal CA's key" in output
    assert passphrase not in output
    assert (CA_DIR / "ca.key").read_bytes() == key_before
    assert host.file("/etc/ssl/internal/host.crt").sha256sum == cert_before
