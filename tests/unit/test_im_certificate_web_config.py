"""OWA's web.config (check E3): the two IM keys, and every hostile document refused with a typed problem."""

from __future__ import annotations

import pytest

from collectors.im_certificate.owa_web_config import (
    MAX_WEB_CONFIG_BYTES,
    ImAppSettings,
    WebConfigError,
    WebConfigProblem,
    parse_im_app_settings,
)

THUMBPRINT = "EA5A332496CC05DA69B75B66111C0F78A110D22d"  # the seed's example ends in a lower-case d
POOL = "atl-cs-001.litwareinc.com"


DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\r\n'


def web_config(app_settings: str, head: str = DECLARATION, root: str = "configuration") -> str:
    """An OWA web.config as Exchange writes it (CRLF), with ``app_settings`` inside <appSettings>."""
    return (
        f"{head}<{root}>\r\n  <configSections />\r\n  <appSettings>\r\n"
        '    <add key="owa:StartUpAssemblies" value="Microsoft.Exchange.Clients.Owa2.Server.dll" />\r\n'
        f"{app_settings}  </appSettings>\r\n"
        '  <system.web><sessionState mode="Off" /></system.web>\r\n'
        f"</{root.split()[0]}>\r\n"
    )


IM_KEYS = (
    f'    <add key="IMCertificateThumbprint" value="{THUMBPRINT}" />\r\n'
    f'    <add key="IMServerName" value="{POOL}" />\r\n'
)


def problem_of(text: str) -> WebConfigProblem:
    result = parse_im_app_settings(text)
    assert isinstance(result, WebConfigError), result
    assert result.detail  # something for the log line
    return result.problem


# --- well-formed files ---------------------------------------------------------------------------


def test_both_keys_read_as_written():
    assert parse_im_app_settings(web_config(IM_KEYS)) == ImAppSettings(POOL, THUMBPRINT)


def test_missing_keys_are_none_not_an_error():
    assert parse_im_app_settings(web_config("")) == ImAppSettings(None, None)
    only_name = f'    <add key="IMServerName" value="{POOL}" />\r\n'
    assert parse_im_app_settings(web_config(only_name)) == ImAppSettings(POOL, None)


def test_no_app_settings_section_at_all():
    text = '<?xml version="1.0"?><configuration><system.web /></configuration>'
    assert parse_im_app_settings(text) == ImAppSettings(None, None)


def test_values_are_kept_verbatim_for_the_caller_to_judge():
    keys = '<add key="IMCertificateThumbprint" value="\u200e' + THUMBPRINT + '  " /><add key="IMServerName" value="" />'
    assert parse_im_app_settings(web_config(keys)) == ImAppSettings("", "\u200e" + THUMBPRINT + "  ")


def test_key_without_value_attribute_is_empty():
    assert parse_im_app_settings(web_config('<add key="IMServerName" />')) == ImAppSettings("", None)


def test_key_names_are_case_insensitive_as_in_dotnet():
    keys = f'<add key="imcertificatethumbprint" value="{THUMBPRINT}" /><add key="IMSERVERNAME" value="{POOL}" />'
    assert parse_im_app_settings(web_config(keys)) == ImAppSettings(POOL, THUMBPRINT)


def test_duplicate_keys_the_last_one_counts_and_is_reported():
    keys = IM_KEYS + '<add key="IMServerName" value="old-pool.litwareinc.com" />'
    assert parse_im_app_settings(web_config(keys)) == ImAppSettings("old-pool.litwareinc.com", THUMBPRINT,
                                                                    ("IMServerName",))


def test_remove_and_clear_apply_in_order():
    removed = IM_KEYS + '<remove key="IMCertificateThumbprint" />'
    assert parse_im_app_settings(web_config(removed)) == ImAppSettings(POOL, None)
    cleared = IM_KEYS + '<clear /><add key="IMServerName" value="x.litwareinc.com" />'
    assert parse_im_app_settings(web_config(cleared)) == ImAppSettings("x.litwareinc.com", None)


def test_keys_outside_app_settings_do_not_count():
    text = ('<configuration><appSettings /><location path="x"><appSettings>'
            f'<add key="IMServerName" value="{POOL}" /></appSettings></location></configuration>')
    assert parse_im_app_settings(text) == ImAppSettings(None, None)


def test_byte_order_mark_namespace_comments_and_utf16_declaration():
    text = web_config("<!-- IM -->" + IM_KEYS, head='\ufeff<?xml version="1.0" encoding="utf-16"?>',
                      root='configuration xmlns="http://schemas.microsoft.com/.NetConfiguration/v2.0"')
    assert parse_im_app_settings(text) == ImAppSettings(POOL, THUMBPRINT)


def test_entity_references_of_xml_itself_are_fine():
    keys = '<add key="IMServerName" value="a&amp;b&#46;com" />'
    assert parse_im_app_settings(web_config(keys)) == ImAppSettings("a&b.com", None)


def test_deeply_nested_document_is_read_without_recursion():
    depth = 50_000
    text = "<configuration>" + "<x>" * depth + "</x>" * depth + f"<appSettings>{IM_KEYS}</appSettings></configuration>"
    assert parse_im_app_settings(text) == ImAppSettings(POOL, THUMBPRINT)


# --- hostile or broken files ---------------------------------------------------------------------


def test_internal_entity_is_refused_not_expanded():
    text = ('<?xml version="1.0"?><!DOCTYPE configuration [<!ENTITY pool "evil.example.com">]>'
            '<configuration><appSettings><add key="IMServerName" value="&pool;" /></appSettings></configuration>')
    assert problem_of(text) is WebConfigProblem.DTD_OR_ENTITY


def test_billion_laughs_is_refused_before_any_expansion():
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    text = (f'<?xml version="1.0"?><!DOCTYPE configuration [{entities}]>'
            '<configuration><appSettings><add key="IMServerName" value="&lol9;" /></appSettings></configuration>')
    assert problem_of(text) is WebConfigProblem.DTD_OR_ENTITY


def test_external_entity_is_refused():
    text = ('<?xml version="1.0"?><!DOCTYPE configuration [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            '<configuration><appSettings><add key="IMServerName" value="&xxe;" /></appSettings></configuration>')
    assert problem_of(text) is WebConfigProblem.DTD_OR_ENTITY


def test_external_dtd_is_refused():
    text = '<?xml version="1.0"?><!DOCTYPE configuration SYSTEM "http://example.com/evil.dtd"><configuration />'
    assert problem_of(text) is WebConfigProblem.DTD_OR_ENTITY


def test_parameter_entity_is_refused():
    text = ('<?xml version="1.0"?><!DOCTYPE configuration [<!ENTITY % remote SYSTEM "http://example.com/x">%remote;]>'
            "<configuration />")
    assert problem_of(text) is WebConfigProblem.DTD_OR_ENTITY


def test_undeclared_entity_is_not_xml():
    assert problem_of(web_config('<add key="IMServerName" value="&pool;" />')) is WebConfigProblem.NOT_XML


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \r\n",
        "This is not XML at all",
        "{\"appSettings\": {}}",
        '<?xml version="1.0"?><configuration><appSettings>',  # cut off (a half-written file)
        "<configuration></configurationx>",
        "<configuration/><configuration/>",  # two roots
        "\x00\x01<configuration/>",
        "<configuration>\ud800</configuration>",  # a lone surrogate cannot be encoded
    ],
)
def test_not_xml(text):
    assert problem_of(text) is WebConfigProblem.NOT_XML


def test_root_must_be_configuration():
    assert problem_of("<appSettings><add key='IMServerName' value='x' /></appSettings>") is (
        WebConfigProblem.NOT_A_CONFIGURATION)


def test_two_app_settings_sections_are_refused_as_dotnet_does():
    text = f"<configuration><appSettings>{IM_KEYS}</appSettings><appSettings /></configuration>"
    assert problem_of(text) is WebConfigProblem.DUPLICATE_APP_SETTINGS


def test_huge_document_is_refused_before_parsing():
    padding = "<!--" + "x" * MAX_WEB_CONFIG_BYTES + "-->"
    assert problem_of(web_config(IM_KEYS + padding)) is WebConfigProblem.TOO_LARGE


def test_size_cap_counts_bytes_not_characters():
    # Under the cap in characters, over it in UTF-8 bytes (three bytes per character).
    padding = "<!--" + "\u20ac" * (MAX_WEB_CONFIG_BYTES // 2) + "-->"
    assert problem_of(web_config(padding)) is WebConfigProblem.TOO_LARGE


def test_a_document_just_under_the_cap_is_read():
    text = web_config(IM_KEYS)
    padding = "<!--" + "x" * (MAX_WEB_CONFIG_BYTES - len(text.encode()) - 7) + "-->"
    assert len((web_config(IM_KEYS + padding)).encode()) <= MAX_WEB_CONFIG_BYTES
    assert parse_im_app_settings(web_config(IM_KEYS + padding)) == ImAppSettings(POOL, THUMBPRINT)


def test_not_text_at_all():
    assert problem_of(b"<configuration />") is WebConfigProblem.NOT_XML  # type: ignore[arg-type]
