"""The [gssapi], [ntlm] and [oauth] tables, the NT hashes `exchmail user` writes,
and the profile settings `exchmail profile show` lists."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from exchmail.auth.accounts import AccountsFile
from exchmail.cli import main
from exchmail.errors import ConfigError
from exchmail.service.config import load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exchmail.toml"
    path.write_text(text)
    return path


def test_E0003_tables_parse(tmp_path):
    config = load_config(
        write(
            tmp_path,
            """
[gssapi]
keytab = "krb5.keytab"
hostname = "mail.example.org"
realms = ["EXAMPLE.ORG"]
[gssapi.principals]
"backup/host@EXAMPLE.ORG" = "backup"
[gssapi.authorize]
"migrate@EXAMPLE.ORG" = ["alice"]
[ntlm]
domains = ["EXAMPLE", "example.org"]
[oauth]
issuer = "https://issuer.example.org"
audience = "imap"
issuer_key = "issuer.pem"
""",
        )
    )
    assert config.gssapi is not None and config.ntlm is not None and config.oauth is not None
    assert config.gssapi.keytab == tmp_path.resolve() / "krb5.keytab"
    assert config.gssapi.imap_principal == "imap/mail.example.org"
    assert config.gssapi.pop3_principal == "pop/mail.example.org"
    assert config.gssapi.principals == {"backup/host@EXAMPLE.ORG": "backup"}
    assert config.gssapi.authorize == {"migrate@EXAMPLE.ORG": ("alice",)}
    assert config.ntlm.target_name == "EXAMPLE" and not config.ntlm.allow_ntlmv1
    assert config.oauth.audience == ("imap",) and config.oauth.leeway == 60.0
    assert "none" not in config.oauth.algorithms


@pytest.mark.parametrize(
    "text, message",
    [
        ("[gssapi]\nrealms = []\n", "gssapi.keytab: required"),
        ("[gssapi]\nkeytab = 'k'\nrealm = 'X'\n", "gssapi.realm: unknown key"),
        ("[gssapi]\nkeytab = 'k'\nrealms = 'X'\n[gssapi.principals]\na = 1\n", "gssapi.principals"),
        ("[ntlm]\nallow_ntlmv1 = 'yes'\n", "ntlm.allow_ntlmv1: expected true or false"),
        ("[ntlm]\ndomains = [1]\n", "ntlm.domains"),
        ("[oauth]\naudience = ['a']\njwks_file = 'j'\n", "oauth.issuer: required"),
        ("[oauth]\nissuer = 'i'\njwks_file = 'j'\n", "oauth.audience: required"),
        ("[oauth]\nissuer = 'i'\naudience = ['a']\n", "oauth.jwks_file: give jwks_file, issuer_key"),
        (
            "[oauth]\nissuer = 'i'\naudience = ['a']\njwks_file = 'j'\nalgorithms = ['none']\n",
            "oauth.algorithms: 'none' is not accepted",
        ),
        (
            "[oauth]\nissuer = 'i'\naudience = ['a']\njwks_file = 'j'\nalgorithms = ['HS256']\n",
            "oauth.algorithms: 'HS256' is not accepted",
        ),
        (
            "[oauth]\nissuer = 'i'\naudience = ['a']\njwks_file = 'j'\nleeway = 3600\n",
            "oauth.leeway: expected seconds from 0 to 300",
        ),
        (
            "[oauth]\nissuer = 'i'\naudience = ['a']\nintrospection_url = 'ftp://x'\n",
            "oauth.introspection_url: expected an http",
        ),
    ],
)
def test_E0003_table_errors_are_one_line_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_E0004_unusable_oauth_keys_stop_start_up(tmp_path):
    pytest.importorskip("jwt")
    from exchmail.service import make_service

    (tmp_path / "jwks.json").write_text("{not json")
    config = load_config(
        write(
            tmp_path,
            """
[server]
data_dir = "data"
[store]
backend = "memory"
[imap]
listen = []
[pop3]
listen = []
[oauth]
issuer = "https://issuer.example.org"
audience = ["imap"]
jwks_file = "jwks.json"
""",
        )
    )
    with pytest.raises(ConfigError, match="oauth.jwks_file: unusable"):
        make_service(config)


def test_E0003_user_commands_write_nt_hashes_only_for_ntlm(tmp_path, monkeypatch):
    pytest.importorskip("spnego")
    config = write(
        tmp_path, '[auth]\nusers_file = "users"\npassword_min_length = 0\n[ntlm]\ndomains = ["EXAMPLE"]\n'
    )
    users = tmp_path / "users"
    monkeypatch.setattr("sys.stdin", io.StringIO("secret\n"))
    assert main(["user", "add", "alice", "--password-stdin", "--config", str(config)]) == 0
    accounts = AccountsFile(users)
    accounts.load()
    # NT hash of "secret" (MD4 of UTF-16LE), as Windows computes it.
    assert accounts.nt_hash("alice") == bytes.fromhex("878d8014606cda29677a44efa1353fc7")
    monkeypatch.setattr("sys.stdin", io.StringIO("another password\n"))
    assert main(["user", "passwd", "alice", "--password-stdin", "--users-file", str(users)]) == 0
    accounts.load()
    assert accounts.nt_hash("alice") is None  # dropped: not asked for
    monkeypatch.setattr("sys.stdin", io.StringIO("another password\n"))
    assert main(["user", "passwd", "alice", "--password-stdin", "--nt-hash", "--users-file", str(users)]) == 0
    accounts.load()
    assert accounts.nt_hash("alice") is not None


def test_E0003_profile_show_lists_the_switches(capsys):
    assert main(["profile", "show", "exchange2010"]) == 0
    out = capsys.readouterr().out
    rows = [
        line for line in out.splitlines() if "enable_gssapi_and_ntlm_auth" in line or "enable_oauth" in line
    ]
    assert len(rows) == 4  # imap.* and pop3.*
    assert any("EnableGSSAPIAndNTLMAuth" in row and "true" in row and "E0003, E0004" in row for row in rows)
    assert all("false" in row for row in rows if "enable_oauth" in row)
    assert main(["profile", "show", "exchange2007"]) == 0
    assert "imap.enable_oauth" in capsys.readouterr().out


@pytest.mark.parametrize(
    "module, make, key",
    [
        ("gssapi", "kerberos", "gssapi.imap_principal: GSSAPI needs the gssapi package"),
        ("spnego._ntlm_raw", "ntlm", "ntlm: NTLM needs the pyspnego package"),
        ("jwt", "oauth", "oauth: bearer tokens need the PyJWT package"),
    ],
)
def test_E0003_missing_extra_stops_start_up(tmp_path, monkeypatch, module, make, key):
    """A configured mechanism whose extra is not installed (its import fails) stops
    the start-up with one line naming the key and the extra."""
    import sys

    from exchmail.auth.saslconfig import GSSAPIConfig, NTLMConfig, OAuthConfig

    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    with pytest.raises(ConfigError, match=key):
        if make == "kerberos":
            from exchmail.auth.kerberos import GSSAPISetup

            GSSAPISetup(
                GSSAPIConfig(tmp_path / "k", "imap/x", "pop/x"),
                "imap/x",
                "gssapi.imap_principal",
                lambda f, *a: f(*a),
            )
        elif make == "ntlm":
            from exchmail.auth.ntlm import NTLMSetup

            NTLMSetup(NTLMConfig())
        else:
            from exchmail.auth.oauth import TokenValidator

            TokenValidator(OAuthConfig("i", ("a",), jwks_file=tmp_path / "j"), None)
