"""settings.load_settings: one frozen Settings, flags > environment > peru-compras.toml > defaults, nothing
written to os.environ, and a bad value is a ConfigurationError naming where it came from."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from peru_compras.errors import ConfigurationError
from peru_compras.fetch import FetchPolicy
from peru_compras.settings import DEFAULT_MAX_PDF_DECODED_BYTES, Settings, load_settings

TOML = """
base-url = "https://oc.example.pe"
max-pdf-bytes = "2KB"
max-pdf-pages = 7
max-pdf-decoded-bytes = "3MB"
fetch-hosts = ["Docs.Example.PE.", "files.example.org:8443"]
fetch-max-bytes = 1234
fetch-timeout = 2.5
explorer-url = "https://explorer.example/{kind}/{id}"
trusted-proxies = ["10.0.0.1", "10.0.0.2"]
request-timeout = 4
"""


def _folder(tmp_path: Path, text: str = TOML) -> Path:
    (tmp_path / "peru-compras.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_the_file_reaches_every_field_and_the_environment_is_left_alone(tmp_path: Path) -> None:
    before = dict(os.environ)
    settings = load_settings(env={}, cwd=_folder(tmp_path))
    assert dict(os.environ) == before  # nothing copied into the process's environment
    assert (settings.base_url, settings.max_pdf_bytes, settings.max_pdf_pages, settings.max_pdf_decoded_bytes) == (
        "https://oc.example.pe", 2048, 7, 3 * 1024 * 1024)
    assert settings.fetch_hosts == ("docs.example.pe", "files.example.org:8443")
    assert (settings.fetch_max_bytes, settings.fetch_timeout) == (1234, 2.5)
    assert settings.explorer_url == "https://explorer.example/{kind}/{id}"
    assert settings.trusted_proxies == "10.0.0.1,10.0.0.2" and settings.request_timeout == 4.0
    policy = FetchPolicy.from_settings(settings, ["extra.example.net"])
    assert policy.extra_hosts == {"docs.example.pe", "files.example.org:8443", "extra.example.net"}
    assert (policy.max_bytes, policy.timeout, policy.base_url) == (1234, 2.5, "https://oc.example.pe")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_pdf_bytes = 1  # type: ignore[misc]


def test_flags_beat_the_environment_which_beats_the_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    env = {"PERU_COMPRAS_MAX_PDF_BYTES": "40KB", "PERU_COMPRAS_BASE_URL": "https://env.example.pe"}
    settings = load_settings({"base_url": "https://flag.example.pe"}, env=env, cwd=folder)
    assert (settings.base_url, settings.max_pdf_bytes, settings.max_pdf_pages) == ("https://flag.example.pe",
                                                                                     40 * 1024, 7)
    # two loads in one process see their own sources (the first load no longer wins)
    assert load_settings(env={}, cwd=tmp_path / "elsewhere").max_pdf_decoded_bytes == DEFAULT_MAX_PDF_DECODED_BYTES
    assert load_settings(env={}, cwd=folder, read_file=False).max_pdf_pages == Settings(home=tmp_path).max_pdf_pages


def test_several_nodes_and_a_quorum(tmp_path: Path) -> None:
    env = {"PERU_COMPRAS_RPC": " http://a.example:8545 , http://b.example:8545,,http://c.example ",
           "PERU_COMPRAS_RPC_QUORUM": "2"}
    settings = load_settings(env=env, cwd=tmp_path)
    assert settings.rpc == "http://a.example:8545"
    assert settings.rpc_urls == ("http://a.example:8545", "http://b.example:8545", "http://c.example")
    assert settings.rpc_quorum == 2
    assert load_settings(env={"PERU_COMPRAS_RPC": "http://a"}, cwd=tmp_path).rpc_quorum is None
    with pytest.raises(ConfigurationError, match="QUORUM is 4, more than the 3"):
        load_settings(env={**env, "PERU_COMPRAS_RPC_QUORUM": "4"}, cwd=tmp_path)


@pytest.mark.parametrize(("where", "value", "named"), [
    ("env", {"PERU_COMPRAS_MAX_PDF_BYTES": "lots"}, "PERU_COMPRAS_MAX_PDF_BYTES (or max-pdf-bytes in"),
    ("env", {"PERU_COMPRAS_MAX_PDF_DECODED_BYTES": "-1"}, "PERU_COMPRAS_MAX_PDF_DECODED_BYTES"),
    ("env", {"PERU_COMPRAS_FETCH_TIMEOUT": "nan"}, "PERU_COMPRAS_FETCH_TIMEOUT"),
    ("env", {"PERU_COMPRAS_KEEP_ALIVE_TIMEOUT": "99999999"}, "PERU_COMPRAS_KEEP_ALIVE_TIMEOUT"),
    ("file", "max-pdf-pages = 0\n", "max-pdf-pages in"),
    ("file", "max-pdf-decoded-bytes = true\n", "max-pdf-decoded-bytes in"),
    ("file", "fetch-hosts = [1, 2]\n", "fetch-hosts in"),
    ("file", "rpc = 5\n", "rpc in"),
    ("file", "max-pdf-pages = \n", "not valid TOML"),
])
def test_a_bad_setting_is_a_configuration_error_that_names_it(tmp_path: Path, where: str, value: object,
                                                              named: str) -> None:
    if where == "env":
        assert isinstance(value, dict)
        with pytest.raises(ConfigurationError, match=f"^{named}".replace("(", r"\(")):
            load_settings(env=value, cwd=tmp_path)
    else:
        assert isinstance(value, str)
        with pytest.raises(ConfigurationError, match=named):
            load_settings(env={}, cwd=_folder(tmp_path, value))


@pytest.mark.parametrize(("url", "problem"), [
    ("localhost:8545", "it must start with http:// or https://"),
    ("ftp://node.example/", "it must start with http:// or https://"),
    ("http://", "it names no host"),
    ("http://[::1", "it does not parse (Invalid IPv6 URL)"),
    ("https://node.example:99999/KEY-123", "it does not parse (Port out of range 0-65535)"),
])
def test_a_node_url_that_cannot_be_one_is_refused_at_once_without_showing_it(tmp_path: Path, url: str,
                                                                             problem: str) -> None:
    """One line naming what is wrong (not the URL: a hosted node's may carry its access key), exit 2, before
    anything is asked of any node; the command's own Rpc refuses it the same way."""
    from peru_compras.chain.rpc import Rpc

    with pytest.raises(ConfigurationError) as caught:
        load_settings({"rpc": f"http://127.0.0.1:8545,{url}"}, env={}, cwd=tmp_path)
    assert caught.value.message == f"--rpc / PERU_COMPRAS_RPC: a node URL is not usable: {problem}"
    assert caught.value.exit_code == 2 and "KEY-123" not in str(caught.value)
    with pytest.raises(ConfigurationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        Rpc(url)
