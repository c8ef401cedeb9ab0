"""Parents of thin archives next to a remote child, mapped by parent-url=, or local."""

from __future__ import annotations

import pytest

from hxz.errors import FormatError
from hxz.sources.http import HttpSource
from hxz.sources.locator import RemoteLocator, candidates
from hxz.sources.s3 import S3Source
from hxz.sources.settings import RemoteSettings
from tests.remote.support import BUCKET


class Logs(list):
    def __call__(self, msg: str) -> None:
        self.append(msg)


def settings(*pairs: tuple[str, str]) -> RemoteSettings:
    s = RemoteSettings()
    for k, v in pairs:
        s.apply(k, v)
    s.finish()
    return s


def test_sibling_on_the_same_server_without_configuration(cat, cat_nginx):
    child = HttpSource([cat_nginx.url + "thin_of_thin.hxz"], log=Logs())
    logs = Logs()
    loc = RemoteLocator(RemoteSettings(), logs)
    try:
        # hexz records the parent's absolute path at packing time; its base name is
        # found next to the child's URL.
        parent = loc(str(cat["thin_shifted"].path), child)
        assert isinstance(parent, HttpSource)
        assert parent.name == cat_nginx.url + "thin_shifted.hxz"
        assert parent.pread(4096, 0) == cat["thin_shifted"].path.read_bytes()[:4096]
        grand = loc(str(cat["thin_base"].path), parent)
        assert grand.name == cat_nginx.url + "thin_base.hxz"
        parent.close()
        grand.close()
    finally:
        child.close()


def test_relative_parent_path_and_every_mirror(cat_nginx):
    child = HttpSource([cat_nginx.url + "thin.hxz", "http://127.0.0.1:1/imgs/thin.hxz"],
                       log=Logs())
    try:
        got = candidates("../base dir/p.hxz", child)
        assert got[0] == [cat_nginx.url.rstrip("/") + "/base%20dir/p.hxz",
                          "http://127.0.0.1:1/base%20dir/p.hxz"]
        assert got[1][1] == "http://127.0.0.1:1/imgs/p.hxz"
    finally:
        child.close()


def test_missing_remote_parent_falls_back_to_local_search(cat, cat_nginx):
    child = HttpSource([cat_nginx.url + "thin.hxz"], log=Logs())
    logs = Logs()
    try:
        assert RemoteLocator(RemoteSettings(), logs)("/elsewhere/not-there.hxz", child) is None
        assert any("not-there.hxz" in m and "searching local" in m for m in logs), logs
    finally:
        child.close()


def test_parent_url_mapping_for_a_local_child(cat, cat_nginx):
    """A local child (any source that is not remote) with a remote parent."""
    s = settings(("parent-url", f"thin_base.hxz={cat_nginx.url}thin_base.hxz"))
    parent = RemoteLocator(s, Logs())(str(cat["thin_base"].path), object())
    try:
        assert isinstance(parent, HttpSource)
        assert parent.size == cat["thin_base"].path.stat().st_size
    finally:
        parent.close()
    assert RemoteLocator(RemoteSettings(), Logs())("base.hxz", object()) is None


def test_parent_url_mapping_that_fails_is_the_answer(cat_nginx):
    s = settings(("parent-url", f"base.hxz={cat_nginx.url}nope.hxz"))
    with pytest.raises(FormatError, match="404"):
        RemoteLocator(s, Logs())("base.hxz", object())


def test_sibling_in_the_same_bucket_folder(cat, moto, tmp_path):
    # From a file: a generated secret may start with "+" or "-", the password forms' marks.
    key = tmp_path / "secret"
    key.write_text(moto.secret_key + "\n")
    s = settings(("endpoint-url", moto.endpoint), ("access-key", moto.access_key),
                 ("secret-key", f"+{key}"))
    child = S3Source(f"s3://{BUCKET}/cat/thin_shifted.hxz", s.http, endpoint_url=moto.endpoint,
                     access_key=moto.access_key, secret_key=moto.secret_key, log=Logs())
    try:
        parent = RemoteLocator(s, Logs())(str(cat["thin_base"].path), child)
        assert isinstance(parent, S3Source) and parent.name == f"s3://{BUCKET}/cat/thin_base.hxz"
        parent.close()
    finally:
        child.close()


def test_settings_reject_credentials_in_urls_and_hide_secrets(tmp_path):
    s = RemoteSettings()
    with pytest.raises(Exception) as ei:
        s.apply("url", "http://bob:hunter2@example.test/x.hxz")
    assert "hunter2" not in str(ei.value)
    f = tmp_path / "secret"
    f.write_text("sk-123456\n")
    s.apply("secret-key", f"+{f}")
    s.apply("access-key", "AKIA1")
    s.apply("user", "alice")
    s.apply("password", "pw-789")
    s.apply("url", "https://h.test/a.hxz?X-Amz-Signature=abc")
    s.finish()
    assert s.secret_key == "sk-123456"
    text = repr(s)
    for secret in ("sk-123456", "pw-789", "abc", "AKIA1"):
        assert secret not in text
    with pytest.raises(Exception, match="one s3:// URL"):
        RemoteSettings().apply("url", "s3://b/k.hxz,http://h.test/k.hxz")
    bad = RemoteSettings()
    bad.apply("access-key", "AKIA")
    with pytest.raises(Exception, match="go together"):
        bad.finish()
