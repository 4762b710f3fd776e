"""Tests of exchmail.profile: the settings as data, built-in profiles, overrides."""

from __future__ import annotations

import dataclasses
import enum
import re

import pytest

from exchmail.errors import ConfigError
from exchmail.profile import (
    PROFILE_NAMES,
    IMAPSettings,
    POP3Settings,
    Profile,
    builtin,
    describe,
    load_profile,
    setting,
)
from exchmail.profile.loader import coerce, format_value


def all_fields():
    for cls in (IMAPSettings, POP3Settings):
        for f in dataclasses.fields(cls):
            yield cls, f


@pytest.mark.parametrize(
    "cls,field", list(all_fields()), ids=[f"{c.__name__}.{f.name}" for c, f in all_fields()]
)
def test_every_field_is_a_documented_setting(cls, field):
    assert set(field.metadata) >= {"ids", "rfc", "admin", "doc"}
    assert isinstance(field.metadata["ids"], tuple)
    assert field.metadata["doc"], "every setting says what it does"
    assert field.kw_only


def test_setting_wraps_field_metadata():
    f = setting(3, ids=("V0001",), rfc="3501 §1", admin="Knob", doc="a knob")
    assert f.default == 3
    assert f.metadata["ids"] == ("V0001",)
    assert f.metadata["rfc"] == "3501 §1"
    assert f.metadata["admin"] == "Knob"
    assert f.metadata["doc"] == "a knob"


def test_profile_names():
    assert PROFILE_NAMES == ("exchange2010", "exchange2007", "rfc3501", "modern", "exchange2016")
    for name in PROFILE_NAMES:
        profile = load_profile(name)
        assert isinstance(profile, Profile)
        assert profile.name == name


def test_settings_are_frozen():
    profile = load_profile("exchange2010")
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.imap.exact_rfc822_size = True  # type: ignore[misc]


def test_exchange2010_values():
    imap, pop3 = builtin.EXCHANGE2010.imap, builtin.EXCHANGE2010.pop3
    assert imap.banner == "The Microsoft Exchange IMAP4 service is ready."
    assert imap.capability_in_greeting is False
    assert imap.capability_in_login_response is False
    assert imap.authenticated_timeout == 1800
    assert imap.preauthenticated_timeout == 60
    assert imap.max_command_size == 10240
    assert imap.max_literal_size == 52428800
    assert imap.exact_rfc822_size is False
    assert imap.empty_envelope_fields_nil is True
    assert imap.capabilities == (
        "IMAP4",
        "IMAP4rev1",
        "AUTH",
        "LOGINDISABLED",
        "STARTTLS",
        "UIDPLUS",
        "CHILDREN",
        "IDLE",
        "NAMESPACE",
        "LITERAL+",
    )
    assert pop3.banner == "The Microsoft Exchange POP3 service is ready."
    assert (pop3.authenticated_timeout, pop3.preauthenticated_timeout) == (1800, 60)
    assert pop3.max_command_size == 512
    assert pop3.exact_rfc822_size is False


def test_exchange2007_differs_from_2010_only_in_documented_limits():
    differing = {
        f.name
        for f in dataclasses.fields(IMAPSettings)
        if getattr(builtin.EXCHANGE2007.imap, f.name) != getattr(builtin.EXCHANGE2010.imap, f.name)
    }
    # and in the sign-off text, which names the version
    assert differing == {"max_connection_from_single_ip", "max_connections_per_user", "sign_off"}
    assert (
        builtin.EXCHANGE2007.imap.max_connection_from_single_ip,
        builtin.EXCHANGE2007.imap.max_connections_per_user,
    ) == (20, 10)
    assert (
        builtin.EXCHANGE2010.imap.max_connection_from_single_ip,
        builtin.EXCHANGE2010.imap.max_connections_per_user,
    ) == (2000, 16)
    pop3_differing = {
        f.name
        for f in dataclasses.fields(POP3Settings)
        if getattr(builtin.EXCHANGE2007.pop3, f.name) != getattr(builtin.EXCHANGE2010.pop3, f.name)
    }
    assert pop3_differing == {
        "max_connection_from_single_ip",
        "max_connections_per_user",
        "max_command_size",
        "sign_off",
    }
    assert builtin.EXCHANGE2007.pop3.max_command_size == 47


def test_rfc3501_values():
    imap, pop3 = builtin.RFC3501.imap, builtin.RFC3501.pop3
    assert imap.banner == "exchmail IMAP4rev1 server ready"
    assert imap.capability_in_greeting is True
    assert imap.capability_in_login_response is True
    assert imap.exact_rfc822_size is True
    assert imap.empty_envelope_fields_nil is False
    caps = builtin.EXCHANGE2010.imap.capabilities
    assert "SASL-IR" not in caps  # exchange-reference: not in the 2010 profile
    assert imap.capabilities == caps[1:2] + ("AUTH", "SASL-IR") + caps[3:]  # no IMAP4; SASL-IR
    assert pop3.banner == "exchmail POP3 server ready"
    assert pop3.max_command_size == 255
    assert pop3.exact_rfc822_size is True


def test_statement_ids_recorded():
    ids = {f.name: f.metadata["ids"] for f in dataclasses.fields(IMAPSettings)}
    assert ids["exact_rfc822_size"] == ("V0006", "V0038", "V0039", "V0043")
    assert ids["capability_in_greeting"] == ("V0050", "V0020")
    assert ids["capability_in_login_response"] == ("V0023", "V0024")
    assert ids["empty_envelope_fields_nil"] == ("V0055",)
    assert ids["authenticated_timeout"] == ("V0015",)
    assert ids["preauthenticated_timeout"] == ("E0002",)


def test_override_prefixed_key():
    profile = load_profile("exchange2010", {"imap.exact_rfc822_size": True})
    assert profile.imap.exact_rfc822_size is True
    assert profile.pop3.exact_rfc822_size is False
    assert profile.name == "exchange2010"
    assert builtin.EXCHANGE2010.imap.exact_rfc822_size is False  # built-ins untouched


def test_override_bare_key_in_both_services():
    profile = load_profile("exchange2010", {"exact_rfc822_size": True})
    assert profile.imap.exact_rfc822_size is True
    assert profile.pop3.exact_rfc822_size is True


def test_override_bare_key_in_one_service():
    profile = load_profile("exchange2010", {"max_literal_size": 1024})
    assert profile.imap.max_literal_size == 1024


def test_override_admin_name():
    profile = load_profile("exchange2010", {"EnableExactRFC822Size": True, "pop3.MaxCommandSize": 1000})
    assert profile.imap.exact_rfc822_size and profile.pop3.exact_rfc822_size
    assert profile.pop3.max_command_size == 1000
    assert profile.imap.max_command_size == 10240


def test_override_nested_tables():
    profile = load_profile(
        "rfc3501", {"imap": {"capabilities": ["IDLE", "UIDPLUS"]}, "pop3": {"banner": "hi"}}
    )
    assert profile.imap.capabilities == ("IDLE", "UIDPLUS")
    assert profile.pop3.banner == "hi"


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"exact_rfc822_sise": True}, "profile.exact_rfc822_sise: unknown setting"),
        ({"smtp.banner": "x"}, "profile.smtp.banner: unknown setting"),
        ({"imap.nope": 1}, "profile.imap.nope: unknown setting"),
        ({"imap": {"nope": 1}}, "profile.imap.nope: unknown setting"),
        (
            {"imap.max_literal_size": 1, "pop3.max_literal_size": 1},
            "profile.pop3.max_literal_size: unknown setting",
        ),
        ({"max_command_size": "abc"}, "profile.max_command_size: expected an integer, got 'abc'"),
        ({"max_command_size": True}, "profile.max_command_size: expected an integer, got True"),
        ({"max_command_size": 0}, "profile.max_command_size: must be at least 1, got 0"),
        ({"exact_rfc822_size": "true"}, "profile.exact_rfc822_size: expected true or false, got 'true'"),
        ({"exact_rfc822_size": 1}, "profile.exact_rfc822_size: expected true or false, got 1"),
        ({"imap.banner": 5}, "profile.imap.banner: expected a string, got 5"),
        ({"capabilities": "IDLE"}, "profile.capabilities: expected a list of strings, got 'IDLE'"),
        ({"capabilities": ["IDLE", 3]}, "profile.capabilities: expected a list of strings, got ['IDLE', 3]"),
    ],
)
def test_override_errors(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_profile("exchange2010", overrides)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_unknown_profile():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "unknown profile 'exchange2013' (choose exchange2010, exchange2007, rfc3501, modern, "
            "exchange2016)"
        ),
    ):
        load_profile("exchange2013")


class Colour(enum.Enum):
    RED = "red"
    DARK_BLUE = "dark-blue"


def test_coerce_enum():
    assert coerce("k", Colour, "red") is Colour.RED
    assert coerce("k", Colour, "DARK_BLUE") is Colour.DARK_BLUE
    assert coerce("k", Colour, "dark-blue") is Colour.DARK_BLUE
    assert coerce("k", Colour, Colour.RED) is Colour.RED
    with pytest.raises(ConfigError, match="profile.k: expected one of red, dark_blue"):
        coerce("k", Colour, "green")


def test_format_value_is_toml():
    assert format_value(True) == "true"
    assert format_value(12) == "12"
    assert format_value('a"b') == '"a\\"b"'
    assert format_value(("A", "B")) == '["A", "B"]'
    assert format_value(Colour.DARK_BLUE) == '"dark_blue"'


def test_describe_lists_every_setting():
    text = describe(load_profile("exchange2010"))
    assert text.splitlines()[0] == "profile exchange2010"
    for cls, f in all_fields():
        section = "imap" if cls is IMAPSettings else "pop3"
        assert f"{section}.{f.name}" in text
    row = next(line for line in text.splitlines() if line.startswith("imap.exact_rfc822_size"))
    assert "false" in row
    assert "V0006, V0038, V0039, V0043" in row
    assert "EnableExactRFC822Size" in row
    assert (
        "(* = overridden)" not in text
        and " * " not in text
        and not any(line.endswith(" *") for line in text.splitlines())
    )


def test_describe_marks_overrides():
    text = describe(load_profile("exchange2010", {"imap.exact_rfc822_size": True}))
    assert "(* = overridden)" in text.splitlines()[0]
    row = next(line for line in text.splitlines() if line.startswith("imap.exact_rfc822_size"))
    assert "true *" in row
