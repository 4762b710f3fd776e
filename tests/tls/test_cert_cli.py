"""`exchmail cert selfsigned` and the newcomer's self-signed certificate."""

from __future__ import annotations

import imaplib
import poplib
import ssl
from dataclasses import replace

from conftest import PASSWORD, start_server
from cryptography import x509
from tls_support import LOOPBACK, TIMEOUT

from exchmail.cli import main
from exchmail.service import make_service
from exchmail.service.config import IMAPConfig, POP3Config, default_config
from exchmail.tls.config import TLSConfig, TLSIdentity, newcomer_tls


def test_selfsigned_writes_key_0600_and_certificate(tmp_path, capsys):
    out = tmp_path / "certs"
    assert main(["cert", "selfsigned", "--hostname", "mail.test", "--out-dir", str(out), "--days", "10"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (out / "key.pem").stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mail.test"]
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert 10 <= days <= 11
    # no silent overwrite
    assert main(["cert", "selfsigned", "--hostname", "x", "--out-dir", str(out)]) == 1
    assert "use --force" in capsys.readouterr().err
    assert main(["cert", "selfsigned", "--hostname", "x", "--out-dir", str(out), "--force"]) == 0
    assert (
        main(["cert", "selfsigned", "--hostname", "x", "--out-dir", str(out), "--force", "--days", "0"]) == 2
    )


def test_selfsigned_certificate_serves_and_verifies(tmp_path, reactor_thread):
    out = tmp_path / "certs"
    assert main(["cert", "selfsigned", "--hostname", "localhost", "--out-dir", str(out)]) == 0
    tls = TLSConfig(identity=TLSIdentity(out / "cert.pem", out / "key.pem"))
    server = start_server(
        tmp_path / "srv",
        login_type="SecureLogin",
        config_changes={
            "tls": tls,
            "imap": IMAPConfig(listen=(LOOPBACK,), tls_listen=(LOOPBACK,)),
            "pop3": POP3Config(listen=(LOOPBACK,)),
        },
    )
    try:
        ctx = ssl.create_default_context(cafile=str(out / "cert.pem"))
        with imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=TIMEOUT) as client:
            client.starttls(ssl_context=ctx)  # verifies the name 127.0.0.1 (in the SAN)
            assert client.login("alice", PASSWORD)[0] == "OK"
        pop = poplib.POP3("localhost", server.pop3_port, timeout=TIMEOUT)
        pop.stls(ctx)
        assert pop.user("alice").startswith(b"+OK") and pop.pass_(PASSWORD).startswith(b"+OK")
        pop.quit()
    finally:
        server.stop()


def test_newcomer_default_is_tls_capable(tmp_path):
    config = default_config(tmp_path)
    assert config.profile.imap.login_type.value == "SecureLogin"
    assert config.tls == newcomer_tls(tmp_path / "exchmail-data")
    assert config.imap.tls_listen == ("tcp:1993:interface=127.0.0.1",)
    assert config.pop3.tls_listen == ("tcp:1995:interface=127.0.0.1",)
    # make_service creates the certificate once, without listening yet
    config = replace(config, imap=IMAPConfig(listen=()), pop3=POP3Config(listen=()))
    top = make_service(config)
    folder = tmp_path / "exchmail-data" / "tls"
    assert (folder / "key.pem").stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
    assert "CN=localhost" in cert.subject.rfc4514_string()
    assert top.getServiceNamed("tls") is not None
    before = (folder / "cert.pem").read_bytes()
    make_service(config)
    assert (folder / "cert.pem").read_bytes() == before  # kept, not replaced
